using TorchSharp;
using static TorchSharp.torch;

namespace AttnDistill.Evaluation;

/// <summary>
/// Frozen-backbone features of a data split: one row per image, in data set order. Owns its
/// tensors (detached from every dispose scope): dispose it when done.
/// </summary>
/// <param name="Features">[N, D] float32, as the backbone returned them (not normalized).</param>
/// <param name="Labels">[N] int64 class indices.</param>
/// <param name="Indices">[N] int64: the data set index of each row (rows of unreadable items are left out).</param>
public sealed record FeatureSet(Tensor Features, Tensor Labels, Tensor Indices) : IDisposable
{
    public long Count => Features.shape[0];
    public long Dim => Features.shape[1];

    /// <summary>
    /// The rows whose data set index is in <paramref name="datasetIndices"/> (e.g. the labelled 1%
    /// of a semi-supervised run, from <c>Data.LabelSubsets</c>): the bank for k-NN and the train
    /// set of the linear probe. Indices absent from this set (unreadable items) are an error.
    /// </summary>
    public FeatureSet Subset(IReadOnlyCollection<int> datasetIndices)
    {
        using var scope = NewDisposeScope();
        var wanted = tensor(datasetIndices.Select(i => (long)i).ToArray(), dtype: ScalarType.Int64, device: Indices.device);
        // Row of each data set index: Indices is sorted (extraction writes in data set order).
        var rows = searchsorted(Indices, wanted);
        using var count = Count.ToScalar();
        using var last = Math.Max(0, Count - 1).ToScalar();
        var inRange = rows.lt(count);
        var found = inRange.logical_and(Indices.index_select(0, rows.clamp(max: last)).eq(wanted));
        long missing = datasetIndices.Count - found.sum().item<long>();
        if (missing > 0)
            throw new ArgumentException($"{missing} of the {datasetIndices.Count} requested items have no feature row (out of range or unreadable).");
        return new FeatureSet(
            Features.index_select(0, rows).DetachFromDisposeScope(),
            Labels.index_select(0, rows).DetachFromDisposeScope(),
            wanted.DetachFromDisposeScope());
    }

    /// <summary>The same rows on <paramref name="device"/> (this set itself when already there; otherwise a copy the caller owns).</summary>
    public FeatureSet To(Device device) =>
        Runs.RunDevice.Same(Features.device, device) ? this
            : new FeatureSet(Features.to(device).DetachFromDisposeScope(), Labels.to(device).DetachFromDisposeScope(), Indices.to(device).DetachFromDisposeScope());

    public void Dispose()
    {
        Features.Dispose();
        Labels.Dispose();
        Indices.Dispose();
    }
}
