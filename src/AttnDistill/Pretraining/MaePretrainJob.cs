using AttnDistill.Data;
using AttnDistill.Data.Transforms;
using AttnDistill.Distributed;
using AttnDistill.Training;
using static TorchSharp.torch;

namespace AttnDistill.Pretraining;

/// <summary>Settings of a MAE pre-training run (METHOD.md section 5).</summary>
public sealed record MaePretrainJobConfig
{
    public required string DataRoot { get; init; }
    public required MaeConfig Mae { get; init; }
    public required TrainerOptions Trainer { get; init; }
    public int Workers { get; init; } = 2;
    public required string OutDir { get; init; }
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
    public static MaePretrainJobResult Run(MaePretrainJobConfig cfg, string configText, IDistributedContext? dist = null,
        IProgress<TrainProgress>? progress = null, Action<string>? log = null, CancellationToken stop = default)
    {
        dist ??= DistributedContext.FromEnvironment();
        var maeConfig = cfg.Mae.Validate();
        if (dist.IsMain) Directory.CreateDirectory(cfg.OutDir);   // only rank 0 writes the run folder
        manual_seed(cfg.Trainer.Seed);
        using var mae = new MaskedAutoencoder(maeConfig);
        var task = new MaeTrainingTask(mae);
        if (cfg.PictureEvery < 0) throw new ArgumentException($"--picture-every must be >= 0 (0 = no pictures), got {cfg.PictureEvery}.");
        var loader = TrainingData.Loader(cfg.DataRoot, maeConfig.Encoder.ImageSize, cfg.Trainer, cfg.Workers, dist, log);
        using var pictures = cfg.PictureEvery > 0 && dist.IsMain ? ReconstructionSamples.Take(cfg.DataRoot, maeConfig, cfg.PictureImages, cfg.Trainer.Seed) : null;
        var trainer = new Trainer(task, loader, cfg.Trainer with { Precision = cfg.Precision }, new TrainerRun
        {
            OutDir = cfg.OutDir, Resume = cfg.Resume, ConfigText = configText, ModelConfig = maeConfig.Encoder,
            Distributed = dist, Progress = progress, Log = log, Stop = stop,
            EpochEnd = pictures is null ? null : e =>
            {
                if (!e.Last && (e.Epoch + 1) % cfg.PictureEvery != 0) return;
                string path = pictures.Write(mae, Path.Combine(cfg.OutDir, $"reconstruction-{e.Epoch + 1:D4}.png"));
                log?.Invoke($"reconstruction picture: {path}");
            },
        });
        // The untrained encoder, saved once: the "random encoder" baseline every SSL evaluation compares against.
        string initial = Path.Combine(cfg.OutDir, "teacher-init.safetensors");
        if (dist.IsMain && !File.Exists(initial) && CheckpointFiles.List(cfg.OutDir).Count == 0)
            MaeEncoderExport.SaveTeacher(mae, initial);
        var result = trainer.Run();
        string teacher = Path.Combine(cfg.OutDir, "teacher.safetensors");
        if (dist.IsMain)
        {
            MaeEncoderExport.SaveTeacher(mae, teacher);
            MetricsFile.Merge(Path.Combine(cfg.OutDir, "metrics.json"), "pretrain_mae", new Dictionary<string, object>
            {
                ["epochs"] = result.EpochsDone, ["optimizer_steps"] = result.OptimizerSteps,
                ["final_loss"] = result.LastEpochLoss, ["images_per_s"] = result.ImagesPerSecond,
            });
        }
        return new MaePretrainJobResult(result, teacher);
    }
}
