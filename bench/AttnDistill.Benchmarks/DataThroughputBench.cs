using AttnDistill.Data;
using AttnDistill.Data.Transforms;

namespace AttnDistill.Benchmarks;

/// <summary>Our loader's images/s on a folder, timed several times (reported side by side with torchvision on the same files).</summary>
public sealed record DataThroughputRow(string Root, int Images, int Workers, int ImageSize, IReadOnlyList<double> ImagesPerSecond, IReadOnlyList<double> Loads)
{
    /// <summary>torchvision's DataLoader on the same folder and worker count, timed right after ours (null: not asked for).</summary>
    public TorchvisionTiming? Torchvision { get; init; }

    public double MedianImagesPerSecond => BenchTiming.Median(ImagesPerSecond);
    public double MedianLoad => BenchTiming.Median(Loads);
}

/// <summary>
/// <see cref="DataThroughput.Measure"/> on a folder's training split with the training transform
/// (RandomResizedCrop(size, scale 0.2-1, bicubic) + flip + normalize), as the torchvision script
/// bench/reference/data_torchvision.py does.
/// </summary>
public static class DataThroughputBench
{
    public static DataThroughputRow Measure(string root, int imageSize, int workers, int repeats, int maxImages = 2048, int batchSize = 64)
    {
        var dataset = DatasetFactory.Open(root, DataSplit.Train);
        var rates = new List<double>();
        var loads = new List<double>();
        int images = 0;
        for (int i = 0; i < repeats; i++)
        {
            loads.Add(MachineLoad.OneMinute());
            var r = DataThroughput.Measure(dataset, TransformPresets.Train(imageSize), workers, batchSize, Math.Min(maxImages, dataset.Count - batchSize));
            rates.Add(r.ImagesPerSecond);
            images = r.Images;
        }
        return new DataThroughputRow(root, images, workers, imageSize, rates, loads);
    }
}
