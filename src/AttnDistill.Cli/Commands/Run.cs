using System.CommandLine;
using System.Runtime.InteropServices;
using AttnDistill.Checkpoints;
using AttnDistill.Training;

namespace AttnDistill.Cli.Commands;

/// <summary>What every command's action shares: signals, error reporting, run-folder set-up.</summary>
public static class Run
{
    /// <summary>Exit code after SIGINT (128 + 2) or SIGTERM (128 + 15); set by the signal seen.</summary>
    public static int InterruptedExitCode { get; private set; } = 130;

    /// <summary>
    /// Runs the work with SIGINT/SIGTERM turned into a graceful stop (finish the step, checkpoint,
    /// exit 130/143) and known errors turned into one red line and exit code 2.
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
            ConsoleReporting.Info("stopping after this step (a checkpoint will be written)...");
            stop.Cancel();
        }
        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => OnSignal(c, 130));
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => OnSignal(c, 143));
        try
        {
            return Task.FromResult(work(stop.Token));
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
            return Task.FromResult(2);
        }
    }

    /// <summary>Creates the run folder, checks it is writable, writes config.yaml, applies thread settings.</summary>
    public static void PrepareOutDir(string outDir, ParseResult parsed, int? threads, string device)
    {
        if (device != "cpu" && !TorchSharp.torch.cuda.is_available())
            throw new ArgumentException($"--device {device}: CUDA is not available in this build or on this machine; use --device cpu, or build with -p:TorchBackend=cuda on a CUDA machine.");
        // libtorch aborts the process on a non-positive thread count: refuse it here.
        if (threads is <= 0) throw new ArgumentException($"--threads must be positive, got {threads}.");
        string probe = Path.Combine(outDir, ".write-test");
        try { Directory.CreateDirectory(outDir); File.WriteAllText(probe, ""); File.Delete(probe); }
        catch (Exception ex) when (ex is UnauthorizedAccessException or IOException)
        {
            throw new ArgumentException($"--out {outDir} is not writable ({ex.Message}): choose another folder.");
        }
        File.WriteAllText(Path.Combine(outDir, "config.yaml"), RecipeArguments.Resolve(parsed));
        if (threads is { } n) TorchSharp.torch.set_num_threads(n);
    }
}
