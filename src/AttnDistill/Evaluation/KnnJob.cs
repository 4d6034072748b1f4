using AttnDistill.Checkpoints;
using AttnDistill.Data;
using AttnDistill.Data.Transforms;
using AttnDistill.Training;

namespace AttnDistill.Evaluation;

/// <summary>
/// DINO's k-NN protocol on a backbone checkpoint: frozen features of the train and test splits
/// (evaluation transform: resize to S*256/224 then center-crop S), weighted vote, metrics.json.
/// </summary>
public static class KnnJob
{
    public static IReadOnlyList<KnnResult> Run(string checkpoint, string dataRoot, int imageSize, string outDir,
        IReadOnlyList<int>? ks = null, int batchSize = 256, int workers = 2, Action<string>? log = null)
    {
        var (model, _) = VitCheckpointLoader.Load(checkpoint, imageSize: imageSize, info: log);
        using var _m = model;
        using var train = Features(model, dataRoot, DataSplit.Train, imageSize, batchSize, workers, log);
        using var test = Features(model, dataRoot, DataSplit.Val, imageSize, batchSize, workers, log);
        int classes = (int)Math.Max(train.Labels.max().item<long>(), test.Labels.max().item<long>()) + 1;
        var results = Knn.Classify(train.Features, train.Labels, test.Features, test.Labels, classes, ks ?? Knn.DefaultKs);
        Directory.CreateDirectory(outDir);
        MetricsFile.Merge(Path.Combine(outDir, "metrics.json"), "knn", results.Select(r => new { k = r.K, top1 = r.Top1, top5 = r.Top5 }).ToArray());
        return results;
    }

    static FeatureSet Features(TorchSharp.torch.nn.Module<TorchSharp.torch.Tensor, TorchSharp.torch.Tensor> model, string root, DataSplit split, int size, int batch, int workers, Action<string>? log)
    {
        var dataset = DatasetFactory.Open(root, split);
        var loader = new DataLoader(dataset, TransformPresets.Eval(size), new DataLoaderOptions { BatchSize = batch, Shuffle = false, Workers = workers, Log = log });
        return FeatureExtractor.Extract(model, loader);
    }
}
