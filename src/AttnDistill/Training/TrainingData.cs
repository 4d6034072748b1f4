using AttnDistill.Data;
using AttnDistill.Data.Transforms;
using AttnDistill.Distributed;

namespace AttnDistill.Training;

/// <summary>The training split as every training loop reads it (docs/METHOD.md, section 3).</summary>
public static class TrainingData
{
    /// <summary>
    /// RandomResizedCrop(size, scale (scaleMin, 1), bicubic) + flip + ImageNet normalization,
    /// shuffled with the run's seed, this process's shard, drop_last.
    /// </summary>
    public static DataLoader Loader(string root, int imageSize, TrainerOptions options, int workers,
        IDistributedContext dist, Action<string>? log, double scaleMin = 0.2) =>
        Loader(DatasetFactory.Open(root, DataSplit.Train), imageSize, options, workers, dist, log, scaleMin);

    /// <summary>As above over a given data set (e.g. the labelled subset of a semi-supervised run).</summary>
    public static DataLoader Loader(IImageDataset dataset, int imageSize, TrainerOptions options, int workers,
        IDistributedContext dist, Action<string>? log, double scaleMin = 0.2) =>
        new(dataset, TransformPresets.Train(imageSize, scaleMin), new DataLoaderOptions
        {
            BatchSize = options.BatchSize, Seed = options.Seed, DropLast = true, Workers = workers,
            Rank = dist.Rank, WorldSize = dist.WorldSize, Log = log,
        });
}
