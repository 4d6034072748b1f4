using AttnDistill.Data;
using AttnDistill.Data.Transforms;
using static TorchSharp.torch;

namespace AttnDistill.Pretraining;

/// <summary>
/// The few evaluation images (and their masks) that every reconstruction picture of a run shows:
/// the same images under the same masks at every epoch, so pictures of successive epochs compare.
/// </summary>
public sealed class ReconstructionSamples : IDisposable
{
    private readonly Tensor _images;
    private readonly Tensor _noise;

    private ReconstructionSamples(Tensor images, Tensor noise)
    {
        _images = images;
        _noise = noise;
    }

    /// <summary>
    /// <paramref name="count"/> evenly spaced images of the validation split (the train split when the
    /// data set has none), evaluation transform, and masking noise drawn from a generator seeded
    /// with <paramref name="seed"/> (the training RNG stream is left untouched).
    /// </summary>
    public static ReconstructionSamples Take(string dataRoot, MaeConfig config, int count, int seed)
    {
        if (count <= 0) throw new ArgumentException($"a reconstruction picture needs at least one image, got {count}.");
        IImageDataset dataset;
        try { dataset = DatasetFactory.Open(dataRoot, DataSplit.Val); }
        catch (Exception e) when (e is DirectoryNotFoundException or FileNotFoundException) { dataset = DatasetFactory.Open(dataRoot, DataSplit.Train); }
        int size = config.Encoder.ImageSize;
        // Spread over the data set (class folders are contiguous): several classes, not one.
        int take = Math.Min(count, dataset.Count);
        var picked = Enumerable.Range(0, take).Select(i => (int)((long)i * dataset.Count / take)).ToArray();
        var loader = new DataLoader(new SubsetDataset(dataset, picked),
            TransformPresets.Eval(size, resizeSize: size), new DataLoaderOptions { BatchSize = count, Shuffle = false, Workers = 1 });
        // The loader owns its batch tensors until the enumeration ends: copy inside it.
        Tensor? images = null;
        foreach (var batch in loader.Epoch(0))
        {
            images = batch.Images.clone().DetachFromDisposeScope();
            break;
        }
        if (images is null) throw new InvalidDataException($"{dataRoot}: no readable image for the reconstruction picture.");
        var generator = new Generator((ulong)seed);
        var noise = rand(images.shape[0], config.Encoder.NumPatches, generator: generator).DetachFromDisposeScope();
        return new ReconstructionSamples(images, noise);
    }

    /// <summary>Renders original | masked | reconstruction for the samples; returns the PNG path.</summary>
    public string Write(MaskedAutoencoder mae, string path) =>
        MaeReconstructionPicture.Write(mae, _images, path, ImageTensors.ImageNetMean, ImageTensors.ImageNetStd, _noise);

    public void Dispose()
    {
        _images.Dispose();
        _noise.Dispose();
    }
}
