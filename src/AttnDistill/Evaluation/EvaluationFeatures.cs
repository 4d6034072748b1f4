using AttnDistill.Data;
using AttnDistill.Data.Transforms;
using AttnDistill.Distributed;

namespace AttnDistill.Evaluation;

/// <summary>
/// Frozen features of both splits of a data root for one backbone, through the feature cache
/// (keyed by the checkpoint's bytes, the split, the image size, the data root and the evaluated
/// layer): k-NN and the cached linear probe compute them once.
/// </summary>
public static class EvaluationFeatures
{
    public static (FeatureSet Train, FeatureSet Val) Get(EvaluatedBackbone model, string checkpoint, string dataRoot, int imageSize,
        string? cacheDir, int batchSize, int workers, Action<string>? log, StageProgress? progress, CancellationToken cancel = default,
        IDistributedContext? dist = null)
    {
        dist ??= SingleProcess.Instance;
        // Checked before any feature is computed or read from the cache: the labels of the two splits must mean the same classes.
        ClassLists.RequireSame(DatasetFactory.Open(dataRoot, DataSplit.Train), DatasetFactory.Open(dataRoot, DataSplit.Val), dataRoot);
        var train = Split(model, checkpoint, dataRoot, DataSplit.Train, imageSize, cacheDir, batchSize, workers, log, progress, cancel, dist);
        try
        {
            return (train, Split(model, checkpoint, dataRoot, DataSplit.Val, imageSize, cacheDir, batchSize, workers, log, progress, cancel, dist));
        }
        catch
        {
            train.Dispose();
            throw;
        }
    }

    static FeatureSet Split(EvaluatedBackbone model, string checkpoint, string root, DataSplit split, int size, string? cacheDir,
        int batch, int workers, Action<string>? log, StageProgress? progress, CancellationToken cancel, IDistributedContext dist)
    {
        string stage = $"features {split.ToString().ToLowerInvariant()}";
        FeatureSet Compute()
        {
            // Each rank extracts its shard; the extractor sums the shards so every rank holds all rows.
            var loader = new DataLoader(DatasetFactory.Open(root, split), TransformPresets.Eval(size), new DataLoaderOptions
            {
                BatchSize = batch, Shuffle = false, Workers = workers, Log = log, Rank = dist.Rank, WorldSize = dist.WorldSize,
            });
            return FeatureExtractor.Extract(model, loader, progress: new StageReporter(progress, stage), cancellation: cancel, dist: dist);
        }
        // Every rank must take part in a distributed extraction: cache only single-process runs.
        if (cacheDir is null || dist.WorldSize > 1) return Compute();
        var cache = new FeatureCache(cacheDir);
        string key = FeatureCache.Key(checkpoint, split.ToString(), size, $"{Path.GetFullPath(root)}|layer {model.Layer}");
        if (cache.Contains(key)) log?.Invoke($"{stage}: from cache {cache.PathFor(key)}");
        return cache.GetOrCompute(key, Compute, model.Device);
    }
}
