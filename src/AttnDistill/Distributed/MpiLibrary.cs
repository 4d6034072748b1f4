using System.Runtime.InteropServices;

namespace AttnDistill.Distributed;

/// <summary>
/// A thin P/Invoke layer over Open MPI's C API (libmpi.so.40), the few calls data parallelism
/// needs. Open MPI's predefined handles (MPI_COMM_WORLD, MPI_FLOAT, MPI_SUM ...) are not integer
/// constants as in MPICH or Microsoft MPI (which is why the MPI.NET package crashes here): they are
/// the addresses of exported globals (<c>ompi_mpi_comm_world</c>, <c>ompi_mpi_float</c>,
/// <c>ompi_mpi_op_sum</c>), read with <see cref="NativeLibrary.GetExport"/>. The library is loaded
/// only when an MPI context is created, so one process without mpirun never needs it.
/// </summary>
internal sealed unsafe class MpiLibrary
{
    public const string FileName = "libmpi.so.40";
    /// <summary>MPI_THREAD_SERIALIZED: any thread may call, one at a time (data workers never call MPI).</summary>
    public const int ThreadSerialized = 2;
    /// <summary>Open MPI's MPI_IN_PLACE is the address 1.</summary>
    public static readonly IntPtr InPlace = 1;
    /// <summary>MPI counts are ints: larger buffers go in chunks of this many elements.</summary>
    public const int MaxCount = 1 << 30;

    public IntPtr CommWorld { get; }
    public IntPtr Byte { get; }
    public IntPtr Float { get; }
    public IntPtr Double { get; }
    public IntPtr Int64 { get; }
    public IntPtr OpSum { get; }
    public IntPtr OpMax { get; }

    private readonly delegate* unmanaged<int*, IntPtr, int, int*, int> _initThread;
    private readonly delegate* unmanaged<int*, int> _initialized;
    private readonly delegate* unmanaged<int*, int> _finalized;
    private readonly delegate* unmanaged<int> _finalize;
    private readonly delegate* unmanaged<IntPtr, int, int> _abort;
    private readonly delegate* unmanaged<IntPtr, int*, int> _commRank;
    private readonly delegate* unmanaged<IntPtr, int*, int> _commSize;
    private readonly delegate* unmanaged<IntPtr, IntPtr, int, IntPtr, IntPtr, IntPtr, int> _allreduce;
    private readonly delegate* unmanaged<IntPtr, int, IntPtr, int, IntPtr, int> _bcast;
    private readonly delegate* unmanaged<IntPtr, int, IntPtr, IntPtr, int, IntPtr, IntPtr, int> _allgather;
    private readonly delegate* unmanaged<IntPtr, int> _barrier;
    private readonly delegate* unmanaged<int, byte*, int*, int> _errorString;
    private readonly delegate* unmanaged<byte*, int*, int> _libraryVersion;

    private MpiLibrary(IntPtr lib)
    {
        IntPtr F(string name) => NativeLibrary.GetExport(lib, name);
        CommWorld = F("ompi_mpi_comm_world");
        Byte = F("ompi_mpi_byte");
        Float = F("ompi_mpi_float");
        Double = F("ompi_mpi_double");
        Int64 = F("ompi_mpi_int64_t");
        OpSum = F("ompi_mpi_op_sum");
        OpMax = F("ompi_mpi_op_max");
        _initThread = (delegate* unmanaged<int*, IntPtr, int, int*, int>)F("MPI_Init_thread");
        _initialized = (delegate* unmanaged<int*, int>)F("MPI_Initialized");
        _finalized = (delegate* unmanaged<int*, int>)F("MPI_Finalized");
        _finalize = (delegate* unmanaged<int>)F("MPI_Finalize");
        _abort = (delegate* unmanaged<IntPtr, int, int>)F("MPI_Abort");
        _commRank = (delegate* unmanaged<IntPtr, int*, int>)F("MPI_Comm_rank");
        _commSize = (delegate* unmanaged<IntPtr, int*, int>)F("MPI_Comm_size");
        _allreduce = (delegate* unmanaged<IntPtr, IntPtr, int, IntPtr, IntPtr, IntPtr, int>)F("MPI_Allreduce");
        _bcast = (delegate* unmanaged<IntPtr, int, IntPtr, int, IntPtr, int>)F("MPI_Bcast");
        _allgather = (delegate* unmanaged<IntPtr, int, IntPtr, IntPtr, int, IntPtr, IntPtr, int>)F("MPI_Allgather");
        _barrier = (delegate* unmanaged<IntPtr, int>)F("MPI_Barrier");
        _errorString = (delegate* unmanaged<int, byte*, int*, int>)F("MPI_Error_string");
        _libraryVersion = (delegate* unmanaged<byte*, int*, int>)F("MPI_Get_library_version");
    }

    /// <summary>Loads libmpi.so.40; a missing library is an error naming the package to install.</summary>
    public static MpiLibrary Load()
    {
        if (!NativeLibrary.TryLoad(FileName, out var lib))
            throw new DllNotFoundException(
                $"this process was started by Open MPI's mpirun but {FileName} cannot be loaded: install Open MPI 4 (Debian/Ubuntu: apt-get install openmpi-bin), or run without mpirun.");
        try { return new MpiLibrary(lib); }
        catch (EntryPointNotFoundException ex)
        {
            throw new DllNotFoundException($"{FileName} is not Open MPI's (missing {ex.Message}); only Open MPI is supported.", ex);
        }
    }

    public bool Initialized { get { int f; Check(_initialized(&f), "MPI_Initialized"); return f != 0; } }
    public bool Finalized { get { int f; Check(_finalized(&f), "MPI_Finalized"); return f != 0; } }

    /// <summary>MPI_Init_thread(NULL, NULL, SERIALIZED); returns the thread level provided.</summary>
    public int InitThread(int required)
    {
        int provided;
        Check(_initThread(null, IntPtr.Zero, required, &provided), "MPI_Init_thread");
        return provided;
    }

    public void FinalizeMpi() => Check(_finalize(), "MPI_Finalize");

    public void Abort(int code) => _abort(CommWorld, code);

    public int Rank { get { int r; Check(_commRank(CommWorld, &r), "MPI_Comm_rank"); return r; } }
    public int Size { get { int s; Check(_commSize(CommWorld, &s), "MPI_Comm_size"); return s; } }

    /// <summary>In-place all-reduce of <paramref name="count"/> elements at <paramref name="data"/>.</summary>
    public void AllReduceInPlace(IntPtr data, long count, IntPtr type, int elementSize, IntPtr op)
    {
        for (long done = 0; done < count; done += MaxCount)
        {
            int n = (int)Math.Min(MaxCount, count - done);
            Check(_allreduce(InPlace, data + (nint)(done * elementSize), n, type, op, CommWorld), "MPI_Allreduce");
        }
    }

    public void Broadcast(IntPtr data, long bytes, int root = 0)
    {
        for (long done = 0; done < bytes; done += MaxCount)
        {
            int n = (int)Math.Min(MaxCount, bytes - done);
            Check(_bcast(data + (nint)done, n, Byte, root, CommWorld), "MPI_Bcast");
        }
    }

    /// <summary>Every rank's <paramref name="bytes"/> bytes, concatenated in rank order into <paramref name="result"/>.</summary>
    public void AllGather(IntPtr data, int bytes, IntPtr result) =>
        Check(_allgather(data, bytes, Byte, result, bytes, Byte, CommWorld), "MPI_Allgather");

    public void Barrier() => Check(_barrier(CommWorld), "MPI_Barrier");

    public string LibraryVersion
    {
        get
        {
            var buf = new byte[8192];   // MPI_MAX_LIBRARY_VERSION_STRING is 256 in Open MPI; generous
            int len;
            fixed (byte* p = buf) Check(_libraryVersion(p, &len), "MPI_Get_library_version");
            return System.Text.Encoding.ASCII.GetString(buf, 0, Math.Max(0, len)).Trim('\0', '\n', ' ');
        }
    }

    private void Check(int code, string call)
    {
        if (code == 0) return;
        var buf = new byte[1024];
        int len = 0;
        fixed (byte* p = buf) _errorString(code, p, &len);
        throw new MpiException($"{call} failed with error {code}: {System.Text.Encoding.ASCII.GetString(buf, 0, Math.Max(0, len))}");
    }
}
