using System.CommandLine;
using System.Runtime.InteropServices;
using AttnDistill.Checkpoints;
using AttnDistill.Distributed;
using AttnDistill.Runs;
using AttnDistill.Training;

namespace AttnDistill.Cli.Commands;

/// <summary>What every command's action shares: signals, error reporting, run-folder set-up.</summary>
public static class Run
{
    /// <summary>Exit code after SIGINT (128 + 2) or SIGTERM (128 + 15); set by the signal seen.</summary>
    public static int InterruptedExitCode { get; private set; } = 130;

    /// <summary>SIGUSR1: Open MPI's mpirun forwards it to every rank (SIGINT/SIGTERM make it kill the job).</summary>
    private const PosixSignal SigUsr1 = (PosixSignal)10;

    /// <summary>
    /// Runs the work with SIGINT/SIGTERM (and SIGUSR1, which mpirun forwards) turned into a graceful
    /// stop (finish the step, checkpoint, exit 130/143/138) and known errors turned into one red
    /// line and exit code 2. Under mpirun an error ends the whole job (MPI_Abort), since the other
    /// ranks would otherwise wait for this one forever; at the end the process leaves the job
    /// (MPI_Finalize). The command joins the job itself, in <see cref="Context"/>, once its device is known.
    /// </summary>
    public static Task<int> Guarded(ParseResult parsed, CancellationToken _, Func<CancellationToken, int> work)
    {
        using var stop = new CancellationTokenSource();
        void OnSignal(PosixSignalContext ctx, int code)
        {
            // A second signal takes the default action (the process ends at once): checkpoints are
            // written atomically, so the newest complete one is still there to resume from.
            if (stop.IsCancellationRequested) return;
            ctx.Cancel = true;                   // do not die: let the trainer finish its step
            InterruptedExitCode = code;
            ConsoleReporting.Info("stopping (training commands finish the step and write a checkpoint)...");
            stop.Cancel();
        }
        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => OnSignal(c, 130));
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => OnSignal(c, 143));
        using var sigusr1 = OperatingSystem.IsWindows() ? null : PosixSignalRegistration.Create(SigUsr1, c => OnSignal(c, 138));
        int exitCode;
        try
        {
            exitCode = work(stop.Token);
        }
        catch (OperationCanceledException ex)
        {
            ConsoleReporting.Info($"stopped: {ex.Message}");
            // A trainer's stop was agreed by every rank, so all of them leave the job together
            // (mpirun reports a rank that exits without MPI_Finalize as a failure). Any other stop
            // was seen by this process alone: finalizing while another rank waits in a collective
            // would hang the job, so mpirun is left to end the others.
            if (ex is TrainingStoppedException) DistributedContext.Shutdown();
            return Task.FromResult(InterruptedExitCode);
        }
        catch (Exception ex) when (ex is ArgumentException or FileNotFoundException or DirectoryNotFoundException or InvalidDataException
                                   or CheckpointFormatException or CheckpointMismatchException or TrainingDivergedException
                                   or RecipeException or UnauthorizedAccessException or IOException or MpiException or DllNotFoundException)
        {
            ConsoleReporting.Error(ex.Message);
            DistributedContext.Abort(2);
            return Task.FromResult(2);
        }
        catch (Exception ex) when (DistributedContext.LaunchWorldSize > 1)
        {
            ConsoleReporting.Error(ex.ToString());
            DistributedContext.Abort(1);
            throw;
        }
        DistributedContext.Shutdown();
        return Task.FromResult(exitCode);
    }

    /// <summary>--device of every command that runs models.</summary>
    public static Option<string> DeviceOption() => new("--device")
    {
        Description = $"cpu, cuda or cuda:N: where models, batches, losses, optimizer state and feature banks live; under mpirun a bare cuda means cuda:LOCAL_RANK. "
            + $"This build runs on {TorchRuntime.BackendDescription}; CUDA needs a build with {RunDevice.CudaBuildSwitch}.",
        DefaultValueFactory = _ => "cpu",
    };

    /// <summary>
    /// The one run context of a command: resolves --device (a missing device is a one-line error,
    /// never a CPU fallback), joins the mpirun job with the backend that device needs (NCCL for
    /// CUDA, MPI for CPU), applies --threads and, unless <paramref name="runFolder"/> is false,
    /// prepares the run folder (lock, config.yaml with the resolved device).
    /// </summary>
    /// <param name="settings">Settings this run records in config.yaml instead of the parsed ones (one run of a sweep: its own blr).</param>
    public static RunContext Context(ParseResult parsed, string outDir, string deviceText, int? threads, CancellationToken stop, bool runFolder = true,
        IReadOnlyDictionary<string, string>? settings = null)
    {
        // libtorch aborts the process on a non-positive thread count: refuse it here.
        if (threads is <= 0) throw new ArgumentException($"--threads must be positive, got {threads}.");
        var device = RunDevice.Resolve(deviceText, DistributedContext.LaunchLocalRank);
        var dist = DistributedContext.FromEnvironment(device);
        if (dist.WorldSize > 1)
            ConsoleReporting.Info($"data-parallel: {dist.WorldSize} processes ({dist.GetType().Name}) on {RunDevice.Name(device)}, {TorchSharp.torch.get_num_threads()} libtorch thread(s) each; batch sizes are per process");
        string config = runFolder ? PrepareOutDir(outDir, parsed, dist, RunDevice.Name(device), settings) : "";
        if (threads is { } n) TorchSharp.torch.set_num_threads(n);
        return new RunContext
        {
            Device = device, Distributed = dist, OutDir = outDir, ConfigText = config,
            Log = ConsoleReporting.Info, Stop = stop,
        };
    }

    /// <summary>
    /// Creates the run folder, checks it is writable, takes its lock, writes config.yaml (with the
    /// device the run resolved to); returns the resolved configuration text. Under mpirun only
    /// rank 0 touches the folder (the others wait for it).
    /// </summary>
    static string PrepareOutDir(string outDir, ParseResult parsed, IDistributedContext dist, string device, IReadOnlyDictionary<string, string>? settings)
    {
        string resolved = RecipeArguments.Resolve(parsed);
        if (settings is not null)
            resolved = string.Join('\n', resolved.Split('\n').Select(l => settings.FirstOrDefault(kv => l.StartsWith(kv.Key + ": ", StringComparison.Ordinal)) is { Key: not null } s ? $"{s.Key}: {s.Value}" : l));
        string config = WithDevice(resolved, device);
        if (dist.IsMain)
        {
            string probe = Path.Combine(outDir, ".write-test");
            try { Directory.CreateDirectory(outDir); File.WriteAllText(probe, ""); File.Delete(probe); }
            catch (Exception ex) when (ex is UnauthorizedAccessException or IOException)
            {
                throw new ArgumentException($"--out {outDir} is not writable ({ex.Message}): choose another folder.");
            }
            RunFolderLock.HoldForProcess(outDir, ConsoleReporting.Info);   // a second run on this folder is refused
            RunFolderChecks.OutsideData(outDir, parsed);
            config = ResumeSettings.Reconcile(outDir, config, parsed, ConsoleReporting.Info);
            AtomicFile.WriteAllText(Path.Combine(outDir, "config.yaml"), config);   // a resume compares against it: never half a file
        }
        dist.Barrier();
        return config;
    }

    /// <summary>config.yaml records the device the run resolved to (cuda:1, not the bare cuda that was typed).</summary>
    static string WithDevice(string config, string device)
    {
        var lines = config.Split('\n').Where(l => !l.StartsWith("device:", StringComparison.Ordinal) && l.Length > 0);
        return string.Join('\n', lines.Append($"device: {device}")) + "\n";
    }
}
