using AttnDistill.Data;
using AttnDistill.Data.Transforms;
using AttnDistill.Distributed;

namespace AttnDistill.Training;

/// <summary>The training split as every self-supervised loop reads it (METHOD.md section 4).</summary>
public static class TrainingData
{
    /// <summary>
    /// RandomResizedCrop(size, scale (scaleMin, 1), bicubic) + flip + ImageNet normalization,
    /// shuffled with the run's seed, this process's shard, drop_last.
    /// </summary>
    public static DataLoader Loader(string root, int imageSize, TrainerOptions options, int workers,
        IDistributedContext dist, Action<string>? log, double scaleMin = 0.2)
    {
        var dataset = DatasetFactory.Open(root, DataSplit.Train);
        return new DataLoader(dataset, TransformPresets.Train(imageSize, scaleMin), new DataLoaderOptions
        {
            BatchSize = options.BatchSize, Seed = options.Seed, DropLast = true, Workers = workers,
            Rank = dist.Rank, WorldSize = dist.WorldSize, Log = log,
        });
    }
}
