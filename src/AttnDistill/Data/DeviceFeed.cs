using TorchSharp;
using static TorchSharp.torch;

namespace AttnDistill.Data;

/// <summary>
/// Puts a loader's batches on the run's device, as PyTorch's DataLoader(pin_memory=True) plus
/// <c>.to(device, non_blocking=True)</c> do: on a CUDA device each batch is copied into pinned
/// (page-locked) host memory and sent without blocking, and the next batch is already on its way
/// while the current one is trained on. On the CPU the loader's batches pass through untouched:
/// no copy, no extra tensor.
/// <para>
/// The device batches belong to this feed as the host batches belong to the loader: valid until
/// the enumeration moves on, then disposed.
/// </para>
/// </summary>
public static class DeviceFeed
{
    public static IEnumerable<DataBatch> ToDevice(IEnumerable<DataBatch> batches, Device device) =>
        device.type == DeviceType.CPU ? batches : Prefetched(batches, host => PinnedCopy(host, device));

    /// <summary>Pinned staging copy of a host tensor, then its asynchronous copy to the device.</summary>
    private static (Tensor Staged, Tensor OnDevice) PinnedCopy(Tensor host, Device device)
    {
        var pinned = host.pin_memory().DetachFromDisposeScope();
        return (pinned, pinned.to(device, non_blocking: true).DetachFromDisposeScope());
    }

    /// <summary>
    /// The prefetching order with any copy (internal so tests drive it on the CPU): batch i + 1's
    /// copy is started before batch i is handed out, and batch i's tensors are released only after
    /// the consumer has finished with it.
    /// </summary>
    internal static IEnumerable<DataBatch> Prefetched(IEnumerable<DataBatch> batches, Func<Tensor, (Tensor Staged, Tensor OnDevice)> copy)
    {
        InFlight? current = null, next = null;
        try
        {
            foreach (var host in batches)
            {
                // Start this batch's copy before handing out the previous one, so that the copy
                // overlaps the previous step's compute.
                next = InFlight.Start(host, copy);
                if (current is not null)
                {
                    yield return current.Batch;
                    current.Dispose();
                }
                (current, next) = (next, null);
            }
            if (current is not null) yield return current.Batch;
        }
        finally
        {
            // A consumer that stops early (a stop request mid-epoch) leaves the batch it holds and the one already on its way.
            current?.Dispose();
            next?.Dispose();
        }
    }

    /// <summary>
    /// A batch being copied: the pinned host tensors must outlive the asynchronous copy, which the
    /// stream finishes before any later kernel, so they are released with the device batch after
    /// its step (whose loss read to the host waited for the stream).
    /// </summary>
    private sealed class InFlight : IDisposable
    {
        private readonly Tensor _pinnedImages, _pinnedLabels;
        public DataBatch Batch { get; }

        private InFlight(Tensor pinnedImages, Tensor pinnedLabels, DataBatch batch)
        {
            _pinnedImages = pinnedImages;
            _pinnedLabels = pinnedLabels;
            Batch = batch;
        }

        public static InFlight Start(DataBatch host, Func<Tensor, (Tensor Staged, Tensor OnDevice)> copy)
        {
            var (pinnedImages, images) = copy(host.Images);
            var (pinnedLabels, labels) = copy(host.Labels);
            return new InFlight(pinnedImages, pinnedLabels, new DataBatch(host.Epoch, host.BatchIndex, images, labels, host.Indices.ToArray()));
        }

        public void Dispose()
        {
            Batch.Dispose();
            _pinnedImages.Dispose();
            _pinnedLabels.Dispose();
        }
    }
}
