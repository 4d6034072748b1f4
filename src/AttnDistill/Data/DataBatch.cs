using static TorchSharp.torch;

namespace AttnDistill.Data;

/// <summary>
/// One batch from a <see cref="DataLoader"/>. Its tensors belong to the loader, not to any dispose
/// scope of the caller: they stay valid until the enumeration moves to the next batch (or ends),
/// when the loader disposes them. Clone what must outlive the loop iteration.
/// </summary>
public sealed class DataBatch : IDisposable
{
    internal DataBatch(int epoch, int batchIndex, Tensor images, Tensor labels, int[] indices)
    {
        Epoch = epoch;
        BatchIndex = batchIndex;
        Images = images;
        Labels = labels;
        Indices = indices;
    }

    public int Epoch { get; }

    /// <summary>Position of this batch in the epoch (what to pass as startBatch to resume after it: BatchIndex + 1).</summary>
    public int BatchIndex { get; }

    /// <summary>float32 [B, C, S, S], contiguous, normalised as the options say.</summary>
    public Tensor Images { get; }

    /// <summary>int64 [B].</summary>
    public Tensor Labels { get; }

    /// <summary>Data set index of each sample (after replacing unreadable ones).</summary>
    public IReadOnlyList<int> Indices { get; }

    public int Count => Indices.Count;

    /// <summary>Disposes the tensors; the loader calls it, calling it again is harmless.</summary>
    public void Dispose()
    {
        Images.Dispose();
        Labels.Dispose();
    }
}
