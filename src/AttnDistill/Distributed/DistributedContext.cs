using TorchSharp;
using static TorchSharp.torch;

namespace AttnDistill.Distributed;

/// <summary>
/// The one place that decides how this process trains: alone (<see cref="SingleProcess"/>), or as
/// one rank of an Open MPI job when <c>mpirun</c> started it with more than one process
/// (<see cref="MpiContext"/> for a CPU run; <see cref="NcclContext"/> over it for a CUDA run, as
/// PyTorch pairs gloo/MPI with CPU tensors and NCCL with CUDA ones; the NCCL path has not run on a
/// GPU here). The launch is read from mpirun's environment (OMPI_COMM_WORLD_SIZE ...) before any
/// MPI call, so a plain process never loads libmpi. MPI can be initialized once per process,
/// which is why the context is process-wide: every job, trainer and the CLI get the same one.
/// </summary>
public static class DistributedContext
{
    /// <summary>Flat-buffer bucket size in MB (default 25).</summary>
    public const string BucketVariable = "ATTNDISTILL_BUCKET_MB";

    private static readonly object Gate = new();
    private static IDistributedContext? _current;

    /// <summary>World size mpirun announced (OMPI_COMM_WORLD_SIZE), 1 when not started by mpirun.</summary>
    public static int LaunchWorldSize => EnvInt("OMPI_COMM_WORLD_SIZE") ?? 1;

    /// <summary>This process's rank as mpirun announced it (OMPI_COMM_WORLD_RANK), 0 otherwise; no MPI call.</summary>
    public static int LaunchRank => EnvInt("OMPI_COMM_WORLD_RANK") ?? 0;

    /// <summary>Ranks on this machine (OMPI_COMM_WORLD_LOCAL_SIZE).</summary>
    public static int LaunchLocalSize => EnvInt("OMPI_COMM_WORLD_LOCAL_SIZE") ?? 1;

    /// <summary>This rank's index on this machine (OMPI_COMM_WORLD_LOCAL_RANK): its GPU with NCCL.</summary>
    public static int LaunchLocalRank => EnvInt("OMPI_COMM_WORLD_LOCAL_RANK") ?? 0;

    /// <summary>True once an MPI context exists in this process.</summary>
    public static bool IsInitialized { get { lock (Gate) return _current is not null and not SingleProcess; } }

    /// <summary>
    /// The process's context, created on first call: <see cref="SingleProcess.Instance"/> unless
    /// mpirun started more than one process, then MPI_Init and an <see cref="MpiContext"/>
    /// (or an <see cref="NcclContext"/> over it when <paramref name="device"/> is a CUDA device).
    /// Under MPI, when OMP_NUM_THREADS is not set, libtorch gets cores / ranks-on-this-machine
    /// threads, so ranks do not oversubscribe the CPU. The command builds it once, from the run's
    /// device; asking again for another kind of device in the same process is an error.
    /// </summary>
    public static IDistributedContext FromEnvironment(Device device)
    {
        bool cudaRun = device.type == DeviceType.CUDA;
        lock (Gate)
        {
            if (_current is not null)
            {
                if (_current is NcclContext != cudaRun && _current is not SingleProcess)
                    throw new ArgumentException($"this process already joined the job with {(_current is NcclContext ? "NCCL (CUDA)" : "MPI (CPU)")} gradients; one process runs on one kind of device.");
                return _current;
            }
            if (LaunchWorldSize <= 1) return _current = SingleProcess.Instance;
            long bucketBytes = (long)((EnvDouble(BucketVariable) ?? GradientBuckets.DefaultBucketBytes / (double)(1 << 20)) * (1 << 20));
            var mpi = MpiContext.Initialize(bucketBytes);
            if (mpi.WorldSize != LaunchWorldSize || mpi.Rank != LaunchRank)
                throw new MpiException($"MPI reports rank {mpi.Rank} of {mpi.WorldSize} but mpirun announced rank {LaunchRank} of {LaunchWorldSize}.");
            if (Environment.GetEnvironmentVariable("OMP_NUM_THREADS") is null)
                set_num_threads(Math.Max(1, Environment.ProcessorCount / Math.Max(1, LaunchLocalSize)));
            _current = cudaRun ? new NcclContext(mpi, device.index < 0 ? LaunchLocalRank : device.index) : mpi;
            return _current;
        }
    }

    /// <summary>MPI_Finalize if an MPI context was created (every rank must call it); a no-op otherwise.</summary>
    public static void Shutdown()
    {
        lock (Gate)
        {
            if (_current is IDisposable d) d.Dispose();
        }
    }

    /// <summary>Ends every rank of the job (MPI_Abort) after an error on this one; a no-op without MPI.</summary>
    public static void Abort(int code)
    {
        IDistributedContext? current;
        lock (Gate) current = _current;
        switch (current)
        {
            case MpiContext m: m.Abort(code); break;
            case NcclContext n: n.Mpi.Abort(code); break;
        }
    }

    private static int? EnvInt(string name) =>
        int.TryParse(Environment.GetEnvironmentVariable(name), out int v) ? v : null;

    private static double? EnvDouble(string name) =>
        double.TryParse(Environment.GetEnvironmentVariable(name), System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out double v) && v > 0 ? v : null;
}
