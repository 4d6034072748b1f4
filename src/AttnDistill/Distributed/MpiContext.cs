using System.Runtime.InteropServices;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace AttnDistill.Distributed;

/// <summary>
/// Data parallelism over Open MPI (one process per rank, started by <c>mpirun</c>), as Horovod does
/// for PyTorch: gradients averaged by in-place all-reduces on a flat bucketed buffer
/// (<see cref="GradientBuckets"/>), rank 0's parameters broadcast at start, scalars averaged for
/// logs. Collectives work on CPU tensors in place; other tensors go through a CPU copy (the NCCL
/// context is the GPU path). Create it once per process with <see cref="Initialize"/>
/// (MPI_Init), normally through <see cref="DistributedContext.FromEnvironment"/>.
/// </summary>
public sealed class MpiContext : IDistributedContext, IDisposable
{
    private readonly MpiLibrary _mpi;
    private readonly long _bucketBytes;
    private GradientBuckets? _buckets;
    private bool _finalized;

    private MpiContext(MpiLibrary mpi, long bucketBytes)
    {
        _mpi = mpi;
        _bucketBytes = bucketBytes;
        Rank = mpi.Rank;
        WorldSize = mpi.Size;
    }

    /// <summary>Loads libmpi.so.40 and calls MPI_Init_thread (once per process).</summary>
    public static MpiContext Initialize(long bucketBytes = GradientBuckets.DefaultBucketBytes)
    {
        var mpi = MpiLibrary.Load();
        if (!mpi.Initialized)
        {
            // Data-loading threads never call MPI; the training thread may change across awaits: SERIALIZED.
            int provided = mpi.InitThread(MpiLibrary.ThreadSerialized);
            if (provided < MpiLibrary.ThreadSerialized)
                throw new MpiException($"MPI_Init_thread gave thread level {provided}; AttnDistill needs MPI_THREAD_SERIALIZED (2).");
        }
        return new MpiContext(mpi, bucketBytes);
    }

    public int Rank { get; }
    public int WorldSize { get; }

    /// <summary>The Open MPI build in use (MPI_Get_library_version).</summary>
    public string LibraryVersion => _mpi.LibraryVersion;

    /// <summary>The flat buffer of the last averaged parameter list (null before the first step).</summary>
    public GradientBuckets? Buckets => _buckets;

    public void AverageGradients(IReadOnlyList<Parameter> parameters)
    {
        if (_buckets is null || !_buckets.Matches(parameters))
        {
            _buckets?.Dispose();
            _buckets = new GradientBuckets(parameters, _bucketBytes);
        }
        _buckets.Average(SumInPlace, WorldSize);
    }

    public void Broadcast(IReadOnlyList<Tensor> tensors)
    {
        foreach (var t in tensors)
        {
            if (t.NumberOfElements == 0) continue;
            if (TensorMemory.IsDirect(t))
            {
                _mpi.Broadcast(TensorMemory.Address(t), t.NumberOfElements * t.ElementSize);
                continue;
            }
            using var scope = NewDisposeScope();
            using var noGrad = no_grad();
            var host = t.detach().to(CPU).contiguous();
            _mpi.Broadcast(TensorMemory.Address(host), host.NumberOfElements * host.ElementSize);
            t.copy_(host);
        }
    }

    public double[] AverageScalars(double[] values)
    {
        var result = (double[])values.Clone();
        if (result.Length == 0) return result;
        var handle = GCHandle.Alloc(result, GCHandleType.Pinned);
        try { _mpi.AllReduceInPlace(handle.AddrOfPinnedObject(), result.Length, _mpi.Double, sizeof(double), _mpi.OpSum); }
        finally { handle.Free(); }
        for (int i = 0; i < result.Length; i++) result[i] /= WorldSize;
        return result;
    }

    public void SumInPlace(Tensor tensor)
    {
        if (tensor.NumberOfElements == 0) return;
        var (type, size) = tensor.dtype switch
        {
            ScalarType.Float32 => (_mpi.Float, 4),
            ScalarType.Float64 => (_mpi.Double, 8),
            ScalarType.Int64 => (_mpi.Int64, 8),
            _ => throw new NotSupportedException($"all-reduce of {tensor.dtype} tensors is not supported (float32, float64, int64)."),
        };
        if (TensorMemory.IsDirect(tensor))
        {
            _mpi.AllReduceInPlace(TensorMemory.Address(tensor), tensor.NumberOfElements, type, size, _mpi.OpSum);
            return;
        }
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var host = tensor.detach().to(CPU).contiguous();
        _mpi.AllReduceInPlace(TensorMemory.Address(host), host.NumberOfElements, type, size, _mpi.OpSum);
        tensor.copy_(host);
    }

    public Tensor AllGather(Tensor tensor)
    {
        using var scope = NewDisposeScope();
        var local = tensor.detach().to(CPU).contiguous();
        long bytes = local.NumberOfElements * local.ElementSize;
        if (bytes > MpiLibrary.MaxCount) throw new NotSupportedException($"all-gather of {bytes} bytes per rank (over {MpiLibrary.MaxCount}).");
        var result = empty(new[] { (long)WorldSize }.Concat(local.shape).ToArray(), local.dtype);   // (W, ...)
        if (bytes > 0) _mpi.AllGather(TensorMemory.Address(local), (int)bytes, TensorMemory.Address(result));
        return result.MoveToOuterDisposeScope();
    }

    public bool Any(bool value)
    {
        var v = new[] { value ? 1.0 : 0.0 };
        var handle = GCHandle.Alloc(v, GCHandleType.Pinned);
        try { _mpi.AllReduceInPlace(handle.AddrOfPinnedObject(), 1, _mpi.Double, sizeof(double), _mpi.OpMax); }
        finally { handle.Free(); }
        return v[0] > 0;
    }

    public void Barrier() => _mpi.Barrier();

    /// <summary>Ends the whole job now (MPI_Abort): for an error on one rank while the others wait in a collective.</summary>
    public void Abort(int code) => _mpi.Abort(code);

    /// <summary>MPI_Finalize (collective: every rank must reach it).</summary>
    public void Dispose()
    {
        if (_finalized) return;
        _finalized = true;
        _buckets?.Dispose();
        _buckets = null;
        if (!_mpi.Finalized) _mpi.FinalizeMpi();
    }
}
