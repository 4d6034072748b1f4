using TorchSharp;
using AttnDistill.Data;
using AttnDistill.Data.Transforms;
using AttnDistill.Runs;
using AttnDistill.Training;
using static TorchSharp.torch;

namespace AttnDistill.Pretraining;

/// <summary>Settings of a MAE pre-training run (docs/METHOD.md, section 4.1).</summary>
public sealed record MaePretrainJobConfig
{
    public required string DataRoot { get; init; }
    public required MaeConfig Mae { get; init; }
    public required TrainerOptions Trainer { get; init; }
    public int Workers { get; init; } = 2;
    public bool Resume { get; init; }
    /// <summary>Write reconstruction-EEEE.png every this many epochs (and after the last); 0: never.</summary>
    public int PictureEvery { get; init; } = 10;
    /// <summary>Images in the reconstruction picture (one row each).</summary>
    public int PictureImages { get; init; } = 6;
    /// <summary>bf16: forward and loss under autocast (see <see cref="ComputePrecision.BFloat16"/>).</summary>
    public ComputePrecision Precision { get; init; } = ComputePrecision.Float32;
}

/// <summary>What a MAE run reports; <see cref="TeacherPath"/> is what <c>distill --teacher</c> takes.</summary>
public sealed record MaePretrainJobResult(TrainResult Train, string TeacherPath);

/// <summary>Pre-trains a MAE on a data set with the shared trainer and writes the encoder as a teacher.</summary>
public static class MaePretrainJob
{
    /// <summary>Trains on <see cref="RunContext.Device"/>: encoder, decoder, masking noise, batches, loss and optimizer state live there.</summary>
    public static MaePretrainJobResult Run(MaePretrainJobConfig cfg, RunContext ctx)
    {
        var dist = ctx.Distributed;
        var log = ctx.Log;
        var maeConfig = cfg.Mae.Validate();
        if (dist.IsMain) Directory.CreateDirectory(ctx.OutDir);   // only rank 0 writes the run folder
        manual_seed(cfg.Trainer.Seed);
        // Built on the host (the seeded init is the same on every device), then moved.
        using var mae = new MaskedAutoencoder(maeConfig);
        mae.to(ctx.Device);
        var task = new MaeTrainingTask(mae);
        if (cfg.PictureEvery < 0) throw new ArgumentException($"--picture-every must be >= 0 (0 = no pictures), got {cfg.PictureEvery}.");
        var loader = TrainingData.Loader(cfg.DataRoot, maeConfig.Encoder.ImageSize, cfg.Trainer, cfg.Workers, dist, log);
        using var pictures = cfg.PictureEvery > 0 && dist.IsMain ? ReconstructionSamples.Take(cfg.DataRoot, maeConfig, cfg.PictureImages, cfg.Trainer.Seed) : null;
        var trainer = new Trainer(task, loader, cfg.Trainer with { Precision = cfg.Precision }, new TrainerRun
        {
            Context = ctx, Resume = cfg.Resume, ModelConfig = maeConfig.Encoder,
            EpochEnd = pictures is null ? null : e =>
            {
                if (!e.Last && (e.Epoch + 1) % cfg.PictureEvery != 0) return;
                string path = pictures.Write(mae, Path.Combine(ctx.OutDir, $"reconstruction-{e.Epoch + 1:D4}.png"));
                log?.Invoke($"reconstruction picture: {path}");
            },
        });
        // The untrained encoder, saved once: the "random encoder" baseline every SSL evaluation compares against.
        string initial = Path.Combine(ctx.OutDir, "teacher-init.safetensors");
        if (dist.IsMain && !File.Exists(initial) && CheckpointFiles.List(ctx.OutDir).Count == 0)
            MaeEncoderExport.SaveTeacher(mae, initial);
        var result = trainer.Run();
        string teacher = Path.Combine(ctx.OutDir, "teacher.safetensors");
        if (dist.IsMain)
        {
            MaeEncoderExport.SaveTeacher(mae, teacher);
            MetricsFile.Merge(Path.Combine(ctx.OutDir, "metrics.json"), "pretrain_mae", new Dictionary<string, object>
            {
                ["epochs"] = result.EpochsDone, ["optimizer_steps"] = result.OptimizerSteps,
                ["final_loss"] = result.LastEpochLoss, ["images_per_s"] = result.ImagesPerSecond,
            });
        }
        ctx.RecordRun("pretrain-mae", cfg.Precision == ComputePrecision.BFloat16 ? "bf16" : "fp32");
        return new MaePretrainJobResult(result, teacher);
    }
}
