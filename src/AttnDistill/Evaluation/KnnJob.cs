using AttnDistill.Training;
using AttnDistill.Runs;

namespace AttnDistill.Evaluation;

/// <summary>Settings of a k-NN evaluation.</summary>
public sealed record KnnJobConfig
{
    public required string Checkpoint { get; init; }
    public required string DataRoot { get; init; }
    public int ImageSize { get; init; } = 224;
    public IReadOnlyList<int> Ks { get; init; } = Knn.DefaultKs;
    public double Temperature { get; init; } = Knn.DefaultTemperature;
    public int BatchSize { get; init; } = 256;
    public int Workers { get; init; } = 2;
    public LabelSelection Labels { get; init; } = LabelSelection.All;
    /// <summary>0: the backbone's output; k: projector layer k of a distill checkpoint.</summary>
    public int EvalLayer { get; init; }
    /// <summary>--pos-embed-resample: null = the rule of the checkpoint's source.</summary>
    public Models.PosEmbedRule? PosEmbedResample { get; init; }
    /// <summary>Where features are cached; null: not cached.</summary>
    public string? FeatureCacheDir { get; init; }
}

/// <summary>
/// DINO's k-NN protocol on a backbone checkpoint: frozen features of the train and test splits
/// (evaluation transform: resize to S*256/224 then center-crop S), weighted vote, metrics.json.
/// With a label selection only the labelled training images form the bank (semi-supervised k-NN).
/// Under mpirun each rank extracts its shard of both splits and the features are summed across
/// ranks; every rank then classifies (the same numbers) and rank 0 writes metrics.json.
/// </summary>
public static class KnnJob
{
    /// <summary>Runs on <see cref="RunContext.Device"/>: the backbone, the batches, the feature bank and the queries.</summary>
    public static IReadOnlyList<KnnResult> Run(KnnJobConfig cfg, RunContext ctx)
    {
        var dist = ctx.Distributed;
        var log = ctx.Log;
        cfg.Labels.Validate();
        if (cfg.Ks.Count == 0 || cfg.Ks.Any(k => k <= 0)) throw new ArgumentException($"--k needs positive neighbour counts, got [{string.Join(", ", cfg.Ks)}].");
        if (cfg.Workers < 0) throw new ArgumentException($"--workers must be >= 0, got {cfg.Workers}.");
        if (!Directory.Exists(cfg.DataRoot) && !File.Exists(cfg.DataRoot)) throw new DirectoryNotFoundException($"--data {cfg.DataRoot}: no such folder.");
        using var model = EvaluatedBackbone.Load(cfg.Checkpoint, cfg.ImageSize, cfg.EvalLayer, new Checkpoints.VitInferenceOptions { Resampling = cfg.PosEmbedResample }, log: ctx.MainLog, device: ctx.Device);
        var (fullTrain, test) = EvaluationFeatures.Get(model, cfg.Checkpoint, cfg.DataRoot, cfg.ImageSize, cfg.FeatureCacheDir, cfg.BatchSize, cfg.Workers, log,
            ctx.Progress.Stage, ctx.Stop, dist);
        using var _t = test;
        var trainSplit = Data.DatasetFactory.Open(cfg.DataRoot, Data.DataSplit.Train);
        var labelled = cfg.Labels.Indices(trainSplit);
        // The labelled subset goes into the run, in the format --label-file reads, so it can be reused.
        if (labelled is not null && ctx.IsMain) LabelSelection.SaveInRun(trainSplit, labelled, ctx.OutDir);
        using var train = labelled is null ? fullTrain : fullTrain.Subset(labelled);
        if (labelled is not null) fullTrain.Dispose();
        int classes = (int)Math.Max(train.Labels.max().item<long>(), test.Labels.max().item<long>()) + 1;
        if (cfg.Ks.Max() > train.Count) throw new ArgumentException($"k = {cfg.Ks.Max()} exceeds the {train.Count} labelled training images: lower --k.");
        var results = Knn.Classify(train.Features, train.Labels, test.Features, test.Labels, classes, cfg.Ks, cfg.Temperature);
        if (!dist.IsMain) return results;
        Directory.CreateDirectory(ctx.OutDir);
        string metrics = Path.Combine(ctx.OutDir, "metrics.json");
        MetricsFile.Merge(metrics, "knn", results.Select(r => new { k = r.K, top1 = r.Top1, top5 = r.Top5 }).ToArray());
        MetricsFile.Merge(metrics, "knn_setup", new Dictionary<string, object>
        {
            ["checkpoint"] = cfg.Checkpoint, ["data"] = Path.GetFullPath(cfg.DataRoot), ["eval_layer"] = cfg.EvalLayer, ["labels"] = cfg.Labels.Describe(),
            ["train_images"] = train.Count, ["test_images"] = test.Count, ["image_size"] = cfg.ImageSize, ["temperature"] = cfg.Temperature,
        });
        ctx.RecordRun("knn");
        return results;
    }
}
