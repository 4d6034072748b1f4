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
        var loader = TrainingData.Loader(cfg.DataRoot, maeConfig.Encoder.ImageSize, cfg.Trainer, cfg.Workers, dist, log);
        var trainer = new Trainer(task, loader, cfg.Trainer, new TrainerRun
        {
            OutDir = cfg.OutDir, Resume = cfg.Resume, ConfigText = configText, ModelConfig = maeConfig.Encoder,
            Distributed = dist, Progress = progress, Log = log, Stop = stop,
        });
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
