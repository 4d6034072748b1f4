using AttnDistill.Checkpoints;
using AttnDistill.Data;
using AttnDistill.Data.Transforms;
using AttnDistill.Distributed;
using AttnDistill.Training;
using static TorchSharp.torch;

namespace AttnDistill.Evaluation;

/// <summary>
/// DINO's k-NN protocol on a backbone checkpoint: frozen features of the train and test splits
/// (evaluation transform: resize to S*256/224 then center-crop S), weighted vote, metrics.json.
/// Under mpirun each rank extracts its shard of both splits and the features are gathered; rank 0
/// classifies, sends the accuracies to the others and writes metrics.json.
/// </summary>
public static class KnnJob
{
    public static IReadOnlyList<KnnResult> Run(string checkpoint, string dataRoot, int imageSize, string outDir,
        IReadOnlyList<int>? ks = null, int batchSize = 256, int workers = 2, Action<string>? log = null, IDistributedContext? dist = null)
    {
        dist ??= DistributedContext.FromEnvironment();
        ks ??= Knn.DefaultKs;
        var (model, _) = VitCheckpointLoader.Load(checkpoint, imageSize: imageSize, info: dist.IsMain ? log : null);
        using var _m = model;
        using var train = Features(model, dataRoot, DataSplit.Train, imageSize, batchSize, workers, log, dist);
        using var test = Features(model, dataRoot, DataSplit.Val, imageSize, batchSize, workers, log, dist);
        // (k, top-1, top-5) per k, computed once on rank 0.
        using var packed = zeros(ks.Count, 3, dtype: ScalarType.Float64);
        if (dist.IsMain)
        {
            int classes = (int)Math.Max(train.Labels.max().item<long>(), test.Labels.max().item<long>()) + 1;
            var computed = Knn.Classify(train.Features, train.Labels, test.Features, test.Labels, classes, ks);
            using var values = tensor(computed.SelectMany(r => new[] { r.K, r.Top1, r.Top5 }).ToArray(), dtype: ScalarType.Float64);
            packed.copy_(values.view(ks.Count, 3));
        }
        dist.Broadcast(new[] { packed });
        var flat = packed.data<double>().ToArray();
        var results = Enumerable.Range(0, ks.Count).Select(i => new KnnResult((int)flat[3 * i], flat[3 * i + 1], flat[3 * i + 2])).ToArray();
        if (dist.IsMain)
        {
            Directory.CreateDirectory(outDir);
            MetricsFile.Merge(Path.Combine(outDir, "metrics.json"), "knn", results.Select(r => new { k = r.K, top1 = r.Top1, top5 = r.Top5 }).ToArray());
        }
        return results;
    }

    static FeatureSet Features(nn.Module<Tensor, Tensor> model, string root, DataSplit split, int size, int batch, int workers,
        Action<string>? log, IDistributedContext dist)
    {
        var dataset = DatasetFactory.Open(root, split);
        var loader = new DataLoader(dataset, TransformPresets.Eval(size), new DataLoaderOptions
        {
            BatchSize = batch, Shuffle = false, Workers = workers, Log = log, Rank = dist.Rank, WorldSize = dist.WorldSize,
        });
        return FeatureExtractor.Extract(model, loader, dist: dist);
    }
}
