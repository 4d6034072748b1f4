using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace AttnDistill.Distributed;

/// <summary>
/// The GPU path, UNTESTED (no GPU or NCCL on the machine this was written on; compiled only):
/// gradients and broadcasts of CUDA tensors go through NCCL on the same flat bucketed buffer
/// (<see cref="GradientBuckets"/>, here in GPU memory); everything else (CPU tensors, logged
/// scalars, stop votes, RNG gathers, barriers) and the exchange of NCCL's unique id go through
/// the <see cref="MpiContext"/> it wraps. One GPU per rank: cuda:LOCAL_RANK by default. Chosen by
/// <see cref="DistributedContext.FromEnvironment"/> for every CUDA run under mpirun.
/// </summary>
public sealed class NcclContext : IDistributedContext, IDisposable
{
    private readonly NcclLibrary _nccl;
    private readonly IntPtr _comm;
    private GradientBuckets? _buckets;
    private bool _disposed;

    public NcclContext(MpiContext mpi, int localDevice)
    {
        Mpi = mpi;
        _nccl = NcclLibrary.Load();
        _nccl.SetDevice(localDevice);
        var id = mpi.Rank == 0 ? _nccl.NewUniqueId() : default;
        unsafe
        {
            using var idBytes = zeros(128, dtype: ScalarType.Byte);
            var span = new Span<byte>(id.Internal, 128);
            if (mpi.Rank == 0) span.CopyTo(idBytes.bytes);
            mpi.Broadcast(new[] { idBytes });
            idBytes.bytes.CopyTo(span);
        }
        _comm = _nccl.CommInitRank(mpi.WorldSize, id, mpi.Rank);
    }

    /// <summary>The MPI context used for CPU tensors and bootstrap.</summary>
    public MpiContext Mpi { get; }
    public int Rank => Mpi.Rank;
    public int WorldSize => Mpi.WorldSize;

    public void AverageGradients(IReadOnlyList<Parameter> parameters)
    {
        if (parameters.Count == 0 || parameters[0].device_type != DeviceType.CUDA)
        {
            Mpi.AverageGradients(parameters);
            return;
        }
        if (_buckets is null || !_buckets.Matches(parameters))
        {
            _buckets?.Dispose();
            _buckets = new GradientBuckets(parameters);
        }
        _buckets.Average(SumInPlace, WorldSize);
    }

    public void Broadcast(IReadOnlyList<Tensor> tensors)
    {
        foreach (var t in tensors)
        {
            if (t.device_type != DeviceType.CUDA || !t.is_contiguous()) { Mpi.Broadcast(new[] { t }); continue; }
            _nccl.BroadcastInPlace(TensorMemory.Address(t), t.NumberOfElements, NcclType(t.dtype), 0, _comm);
        }
    }

    public void SumInPlace(Tensor tensor)
    {
        if (tensor.device_type != DeviceType.CUDA || !tensor.is_contiguous()) { Mpi.SumInPlace(tensor); return; }
        _nccl.AllReduceSumInPlace(TensorMemory.Address(tensor), tensor.NumberOfElements, NcclType(tensor.dtype), _comm);
    }

    public double[] AverageScalars(double[] values) => Mpi.AverageScalars(values);
    public Tensor AllGather(Tensor tensor) => Mpi.AllGather(tensor);
    public bool Any(bool value) => Mpi.Any(value);
    public void Barrier() => Mpi.Barrier();

    private static int NcclType(ScalarType t) => t switch
    {
        ScalarType.Float32 => NcclLibrary.Float32,
        ScalarType.Float64 => NcclLibrary.Float64,
        ScalarType.Float16 => NcclLibrary.Float16,
        ScalarType.BFloat16 => NcclLibrary.BFloat16,
        ScalarType.Int64 => NcclLibrary.Int64,
        _ => throw new NotSupportedException($"NCCL collectives of {t} tensors are not supported."),
    };

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _buckets?.Dispose();
        if (cuda.is_available()) cuda.synchronize();
        _nccl.CommDestroy(_comm);
        Mpi.Dispose();
    }
}
