using TorchSharp;
using AttnDistill.Checkpoints;
using AttnDistill.Data;
using AttnDistill.Runs;
using AttnDistill.Training;

namespace AttnDistill.Evaluation;

/// <summary>Settings of a linear-probing run.</summary>
public sealed record LinearJobConfig
{
    public required string Checkpoint { get; init; }
    public required string DataRoot { get; init; }
    public int ImageSize { get; init; } = 224;
    /// <summary>Schedule, batch, seed; BaseLr is ignored (the sweep's base lrs are used), weight decay 0 (MAE).</summary>
    public required TrainerOptions Trainer { get; init; }
    public IReadOnlyList<double> BaseLrs { get; init; } = new LinearProbeOptions().BaseLrs;
    /// <summary>True: MAE's protocol (RandomResizedCrop + flip, features recomputed every batch); false: cached center-crop features.</summary>
    public bool Augment { get; init; } = true;
    public int Workers { get; init; } = 2;
    public int EvalBatchSize { get; init; } = 256;
    public LabelSelection Labels { get; init; } = LabelSelection.All;
    public int EvalLayer { get; init; }
    /// <summary>--pos-embed-resample: null = the rule of the checkpoint's source.</summary>
    public Models.PosEmbedRule? PosEmbedResample { get; init; }
    public string? FeatureCacheDir { get; init; }
    public bool Resume { get; init; }
}

/// <summary>
/// MAE's linear probing (docs/METHOD.md, section 5.3): BatchNorm-without-affine + Linear heads on frozen
/// features, LARS, warm-up then cosine, one head per base lr of the sweep, all trained in the same
/// pass; reports every head and the best. The best head is saved as linear_head.safetensors.
/// </summary>
public static class LinearJob
{
    /// <summary>Runs on <see cref="RunContext.Device"/>: backbone, batches, features and every head of the sweep.</summary>
    public static LinearProbeResult Run(LinearJobConfig cfg, RunContext ctx)
    {
        var dist = ctx.Distributed;
        var log = ctx.Log;
        var stop = ctx.Stop;
        StageProgress progress = ctx.Progress.Stage;
        cfg.Labels.Validate();
        var opts = new LinearProbeOptions
        {
            BaseLrs = cfg.BaseLrs, Epochs = cfg.Trainer.Epochs, WarmupEpochs = cfg.Trainer.WarmupEpochs, BatchSize = cfg.Trainer.BatchSize,
            MinLr = cfg.Trainer.MinLr, Seed = cfg.Trainer.Seed,
        }.Validate();
        using var model = EvaluatedBackbone.Load(cfg.Checkpoint, cfg.ImageSize, cfg.EvalLayer, new Checkpoints.VitInferenceOptions { Resampling = cfg.PosEmbedResample }, log: log, device: ctx.Device);
        var (trainSet, valSet) = EvaluationData.Open(cfg.DataRoot, cfg.Labels);
        // The labelled subset goes into the run, in the format --label-file reads, so it can be reused.
        if (ctx.IsMain && trainSet is AttnDistill.Data.SubsetDataset subset) LabelSelection.SaveInRun(subset.Source, subset.Indices, ctx.OutDir);
        int classes = trainSet.ClassNames.Count;
        TorchSharp.torch.manual_seed(cfg.Trainer.Seed);
        LinearProbeResult result;
        LinearProbeSweep? sweep = null;
        try
        {
            if (cfg.Augment)
            {
                sweep = new LinearProbeSweep(FeatureWidth(model), classes, cfg.BaseLrs);
                sweep.to(ctx.Device);
                double reference = cfg.BaseLrs[0];
                var task = new LinearProbeTask(model, sweep, reference, ctx.Device);
                var trainerOptions = cfg.Trainer with { BaseLr = reference, Lr = null, WeightDecay = 0 };
                // MAE's linear probing crops with torchvision's default scale (0.08, 1).
                var loader = TrainingData.Loader(trainSet, cfg.ImageSize, trainerOptions, cfg.Workers, dist, log, scaleMin: 0.08);
                var trainer = new Trainer(task, loader, trainerOptions, new TrainerRun { Context = ctx, Resume = cfg.Resume }, LinearProbeTask.LarsFactory);
                var train = trainer.Run();
                if (train.Interrupted) throw new TrainingStoppedException("linear probing stopped before the end; run again with --resume to finish.");
                using var val = FeatureExtractor.Extract(model, EvaluationData.EvalLoader(valSet, cfg.ImageSize, cfg.EvalBatchSize, cfg.Workers, log),
                    progress: new StageReporter(progress, "features val"), cancellation: stop);
                result = LinearProbe.Evaluate(sweep, val, opts, ctx.Device);
            }
            else
            {
                var (fullTrain, val) = EvaluationFeatures.Get(model, cfg.Checkpoint, cfg.DataRoot, cfg.ImageSize, cfg.FeatureCacheDir, cfg.EvalBatchSize, cfg.Workers, log, progress, stop, dist);
                using var _v = val;
                // The subset EvaluationData.Open already drew (null: every label).
                var labelled = (trainSet as SubsetDataset)?.Indices.ToArray();
                using var train = labelled is null ? fullTrain : fullTrain.Subset(labelled);
                if (labelled is not null) fullTrain.Dispose();
                var epochReporter = new StageReporter(progress, "probe epochs");
                result = LinearProbe.TrainOnFeatures(train, val, classes, opts, ctx.Device,
                    progress: new Progress<(int Epoch, int Epochs)>(e => epochReporter.Report((e.Epoch, e.Epochs))), cancellation: stop, sweepOut: s => sweep = s);
            }
            if (dist.IsMain)
            {
                int best = cfg.BaseLrs.ToList().IndexOf(result.Best.BaseLr);
                SafetensorsFile.Write(Path.Combine(ctx.OutDir, "linear_head.safetensors"), sweep!.Heads[best].state_dict(),
                    new Dictionary<string, string> { ["base_lr"] = result.Best.BaseLr.ToString("R", System.Globalization.CultureInfo.InvariantCulture), ["classes"] = classes.ToString() });
                string metrics = Path.Combine(ctx.OutDir, "metrics.json");
                MetricsFile.Merge(metrics, "linear", result);
                MetricsFile.Merge(metrics, "linear_setup", new Dictionary<string, object>
                {
                    ["checkpoint"] = cfg.Checkpoint, ["data"] = Path.GetFullPath(cfg.DataRoot), ["eval_layer"] = cfg.EvalLayer, ["labels"] = cfg.Labels.Describe(), ["augment"] = cfg.Augment,
                    ["train_images"] = trainSet.Count, ["image_size"] = cfg.ImageSize, ["epochs"] = cfg.Trainer.Epochs, ["batch_size"] = cfg.Trainer.BatchSize,
                });
            }
            ctx.RecordRun("linear");
            return result;
        }
        finally
        {
            sweep?.Dispose();
        }
    }

    /// <summary>Width of the features the probe reads (one forward of a blank image).</summary>
    static long FeatureWidth(EvaluatedBackbone model)
    {
        using var scope = TorchSharp.torch.NewDisposeScope();
        using var noGrad = TorchSharp.torch.no_grad();
        var c = model.Config;
        return model.forward(TorchSharp.torch.zeros(1, c.InChans, c.ImageSize, c.ImageSize, device: model.Device)).shape[1];
    }
}
