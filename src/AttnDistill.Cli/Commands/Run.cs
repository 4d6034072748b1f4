using System.CommandLine;
using System.Runtime.InteropServices;
using AttnDistill.Checkpoints;
using AttnDistill.Distributed;
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
    /// line and exit code 2. Under mpirun this is where the process joins the MPI job
    /// (<see cref="DistributedContext.FromEnvironment"/>, which every job then uses), leaves it at the
    /// end (MPI_Finalize), or ends the whole job on an error (MPI_Abort), since the other ranks
    /// would otherwise wait for this one forever.
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
        IDistributedContext dist;
        try
        {
            dist = DistributedContext.FromEnvironment();
            if (dist.WorldSize > 1)
                ConsoleReporting.Info($"data-parallel: {dist.WorldSize} processes ({dist.GetType().Name}), {TorchSharp.torch.get_num_threads()} libtorch thread(s) each; batch sizes are per process");
        }
        catch (Exception ex) when (ex is DllNotFoundException or MpiException or ArgumentException)
        {
            ConsoleReporting.Error(ex.Message);
            return Task.FromResult(2);
        }
        int exitCode;
        try
        {
            exitCode = work(stop.Token);
        }
        catch (OperationCanceledException ex)
        {
            ConsoleReporting.Info($"stopped: {ex.Message}");
            return Task.FromResult(InterruptedExitCode);
        }
        catch (Exception ex) when (ex is ArgumentException or FileNotFoundException or DirectoryNotFoundException or InvalidDataException
                                   or CheckpointFormatException or CheckpointMismatchException or TrainingDivergedException
                                   or RecipeException or UnauthorizedAccessException or IOException)
        {
            ConsoleReporting.Error(ex.Message);
            DistributedContext.Abort(2);
            return Task.FromResult(2);
        }
        catch (Exception ex) when (dist.WorldSize > 1)
        {
            ConsoleReporting.Error(ex.ToString());
            DistributedContext.Abort(1);
            throw;
        }
        DistributedContext.Shutdown();
        return Task.FromResult(exitCode);
    }

    /// <summary>
    /// Creates the run folder, checks it is writable, writes config.yaml, applies thread settings;
    /// returns the resolved configuration text. Under mpirun only rank 0 touches the folder (the
    /// others wait for it, then may read it on a shared file system, but need not).
    /// </summary>
    public static string PrepareOutDir(string outDir, ParseResult parsed, int? threads, string device)
    {
        if (device != "cpu" && !TorchSharp.torch.cuda.is_available())
            throw new ArgumentException($"--device {device}: CUDA is not available in this build or on this machine; use --device cpu, or build with -p:TorchBackend=cuda on a CUDA machine.");
        // libtorch aborts the process on a non-positive thread count: refuse it here.
        if (threads is <= 0) throw new ArgumentException($"--threads must be positive, got {threads}.");
        string config = RecipeArguments.Resolve(parsed);
        var dist = DistributedContext.FromEnvironment();
        if (dist.IsMain)
        {
            string probe = Path.Combine(outDir, ".write-test");
            try { Directory.CreateDirectory(outDir); File.WriteAllText(probe, ""); File.Delete(probe); }
            catch (Exception ex) when (ex is UnauthorizedAccessException or IOException)
            {
                throw new ArgumentException($"--out {outDir} is not writable ({ex.Message}): choose another folder.");
            }
            AttnDistill.Runs.RunFolderLock.HoldForProcess(outDir, ConsoleReporting.Info);   // a second run on this folder is refused (issue 22)
            RunFolderChecks.OutsideData(outDir, parsed);
            config = ResumeSettings.Reconcile(outDir, config, parsed, ConsoleReporting.Info);
            File.WriteAllText(Path.Combine(outDir, "config.yaml"), config);
        }
        dist.Barrier();
        if (threads is { } n) TorchSharp.torch.set_num_threads(n);
        return config;
    }
}
