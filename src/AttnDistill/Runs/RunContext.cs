using AttnDistill.Distributed;
using AttnDistill.Training;
using static TorchSharp.torch;

namespace AttnDistill.Runs;

/// <summary>
/// What every job is handed besides its own settings: the device everything of the run lives on,
/// the process group, the run folder, the resolved configuration text, the log, progress and the
/// stop request. Built once by the command (or a test) and passed down; no job finds any of these
/// on its own, so a job never starts MPI or picks a device behind the caller's back.
/// </summary>
public sealed record RunContext
{
    /// <summary>The device of every tensor of the run (models, batches, losses, optimizer state, banks).</summary>
    public Device Device { get; init; } = CPU;
    public IDistributedContext Distributed { get; init; } = SingleProcess.Instance;
    /// <summary>The run folder (config.yaml, log.txt, checkpoints, metrics.json); only rank 0 writes it.</summary>
    public required string OutDir { get; init; }
    /// <summary>Resolved configuration text (what config.yaml holds), stored in every checkpoint.</summary>
    public string ConfigText { get; init; } = "";
    public Action<string>? Log { get; init; }
    public IRunProgress Progress { get; init; } = SilentProgress.Instance;
    /// <summary>Cancelled on SIGINT/SIGTERM/SIGUSR1: the current step finishes, a checkpoint is written, the job returns.</summary>
    public CancellationToken Stop { get; init; }

    public bool IsMain => Distributed.IsMain;

    /// <summary>The log on the main rank only (other ranks would repeat every line).</summary>
    public Action<string>? MainLog => IsMain ? Log : null;

    /// <summary>The device as config.yaml and metrics.json record it ("cpu", "cuda:0").</summary>
    public string DeviceName => RunDevice.Name(Device);

    /// <summary>
    /// Records how the run ran in metrics.json's "run" section (job, device, processes, precision),
    /// on the main rank; every job calls it once its results are written.
    /// </summary>
    public void RecordRun(string job, string precision = "fp32")
    {
        if (!IsMain) return;
        Directory.CreateDirectory(OutDir);
        MetricsFile.Merge(Path.Combine(OutDir, "metrics.json"), "run", new Dictionary<string, object>
        {
            ["job"] = job, ["device"] = DeviceName, ["world_size"] = Distributed.WorldSize, ["precision"] = precision,
        });
    }

    /// <summary>A context for one process on the CPU writing to <paramref name="outDir"/> (tests, tools).</summary>
    public static RunContext Cpu(string outDir, Action<string>? log = null) => new() { OutDir = outDir, Log = log };
}
