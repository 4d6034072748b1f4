using System.Runtime.InteropServices;

namespace AttnDistill.Distributed;

/// <summary>
/// P/Invoke layer over NCCL (libnccl.so.2) and the one CUDA runtime call it needs
/// (cudaSetDevice). UNTESTED: this machine has no GPU and no NCCL; it is compiled and follows
/// nccl.h of NCCL 2.x (enum values, ncclUniqueId of 128 bytes passed by value).
/// </summary>
internal sealed unsafe class NcclLibrary
{
    public const string FileName = "libnccl.so.2";

    /// <summary>ncclDataType_t values (nccl.h).</summary>
    public const int Int64 = 4, Float16 = 6, Float32 = 7, Float64 = 8, BFloat16 = 9;
    /// <summary>ncclRedOp_t: ncclSum.</summary>
    public const int Sum = 0;

    /// <summary>ncclUniqueId: 128 opaque bytes made by rank 0 and sent to the others (over MPI here).</summary>
    [StructLayout(LayoutKind.Sequential, Size = 128)]
    public struct UniqueId
    {
        public fixed byte Internal[128];
    }

    private readonly delegate* unmanaged<UniqueId*, int> _getUniqueId;
    private readonly delegate* unmanaged<IntPtr*, int, UniqueId, int, int> _commInitRank;
    private readonly delegate* unmanaged<IntPtr, IntPtr, nuint, int, int, IntPtr, IntPtr, int> _allReduce;
    private readonly delegate* unmanaged<IntPtr, IntPtr, nuint, int, int, IntPtr, IntPtr, int> _broadcast;
    private readonly delegate* unmanaged<IntPtr, int> _commDestroy;
    private readonly delegate* unmanaged<int, IntPtr> _errorString;
    private readonly delegate* unmanaged<int, int> _cudaSetDevice;

    private NcclLibrary(IntPtr nccl, IntPtr cudart)
    {
        IntPtr F(string name) => NativeLibrary.GetExport(nccl, name);
        _getUniqueId = (delegate* unmanaged<UniqueId*, int>)F("ncclGetUniqueId");
        _commInitRank = (delegate* unmanaged<IntPtr*, int, UniqueId, int, int>)F("ncclCommInitRank");
        _allReduce = (delegate* unmanaged<IntPtr, IntPtr, nuint, int, int, IntPtr, IntPtr, int>)F("ncclAllReduce");
        _broadcast = (delegate* unmanaged<IntPtr, IntPtr, nuint, int, int, IntPtr, IntPtr, int>)F("ncclBroadcast");
        _commDestroy = (delegate* unmanaged<IntPtr, int>)F("ncclCommDestroy");
        _errorString = (delegate* unmanaged<int, IntPtr>)F("ncclGetErrorString");
        _cudaSetDevice = (delegate* unmanaged<int, int>)NativeLibrary.GetExport(cudart, "cudaSetDevice");
    }

    public static NcclLibrary Load()
    {
        if (!NativeLibrary.TryLoad(FileName, out var nccl))
            throw new DllNotFoundException($"a CUDA run under mpirun averages gradients over NCCL, but {FileName} cannot be loaded: install NCCL 2 (libnccl2) on every machine of the job.");
        foreach (var name in new[] { "libcudart.so", "libcudart.so.12", "libcudart.so.11.0" })
            if (NativeLibrary.TryLoad(name, out var cudart)) return new NcclLibrary(nccl, cudart);
        throw new DllNotFoundException("the nccl backend needs the CUDA runtime (libcudart.so) for cudaSetDevice.");
    }

    public UniqueId NewUniqueId()
    {
        UniqueId id;
        Check(_getUniqueId(&id), "ncclGetUniqueId");
        return id;
    }

    public void SetDevice(int device)
    {
        int code = _cudaSetDevice(device);
        if (code != 0) throw new MpiException($"cudaSetDevice({device}) failed with CUDA error {code}.");
    }

    public IntPtr CommInitRank(int worldSize, UniqueId id, int rank)
    {
        IntPtr comm;
        Check(_commInitRank(&comm, worldSize, id, rank), "ncclCommInitRank");
        return comm;
    }

    /// <summary>In-place sum over ranks, enqueued on the legacy default stream (where libtorch's kernels run by default).</summary>
    public void AllReduceSumInPlace(IntPtr data, long count, int type, IntPtr comm) =>
        Check(_allReduce(data, data, (nuint)count, type, Sum, comm, IntPtr.Zero), "ncclAllReduce");

    public void BroadcastInPlace(IntPtr data, long count, int type, int root, IntPtr comm) =>
        Check(_broadcast(data, data, (nuint)count, type, root, comm, IntPtr.Zero), "ncclBroadcast");

    public void CommDestroy(IntPtr comm) => _commDestroy(comm);

    private void Check(int code, string call)
    {
        if (code == 0) return;
        string text = Marshal.PtrToStringAnsi(_errorString(code)) ?? "";
        throw new MpiException($"{call} failed with NCCL error {code}: {text}");
    }
}
