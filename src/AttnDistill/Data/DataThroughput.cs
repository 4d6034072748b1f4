using System.Diagnostics;
using AttnDistill.Data.Transforms;

namespace AttnDistill.Data;

/// <summary>Images per second of one <see cref="DataLoader"/> configuration.</summary>
public sealed record ThroughputResult(int Workers, int BatchSize, int Images, double Seconds)
{
    public double ImagesPerSecond => Images / Seconds;
}

/// <summary>
/// Measures the loader end to end (decode + transform + batch tensor + normalise), for a bench
/// project to call: <c>DataThroughput.Measure(ds, TransformPresets.Train(224), workers: 2)</c>.
/// </summary>
public static class DataThroughput
{
    /// <param name="maxImages">Stop after about this many images (whole batches), or at the end of the epoch.</param>
    /// <param name="warmupBatches">Batches consumed before timing starts (JIT, file cache).</param>
    public static ThroughputResult Measure(IImageDataset dataset, IImageTransform transform, int workers,
        int batchSize = 64, int maxImages = 2048, int warmupBatches = 1)
    {
        var loader = new DataLoader(dataset, transform, new DataLoaderOptions { BatchSize = batchSize, Workers = workers, Seed = 0 });
        int images = 0, batches = 0;
        var watch = new Stopwatch();
        if (warmupBatches == 0) watch.Start();
        foreach (var batch in loader.Epoch(0))
        {
            if (batches++ < warmupBatches)
            {
                if (batches == warmupBatches) watch.Start();
                continue;
            }
            images += batch.Count;
            if (images >= maxImages) break;
        }
        watch.Stop();
        if (images == 0) throw new InvalidOperationException($"data set too small to time: {dataset.Count} items, batch {batchSize}, {warmupBatches} warm-up batch(es)");
        return new ThroughputResult(workers, batchSize, images, watch.Elapsed.TotalSeconds);
    }
}
