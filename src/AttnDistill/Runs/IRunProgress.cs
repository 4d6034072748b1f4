using AttnDistill.Training;

namespace AttnDistill.Runs;

/// <summary>
/// Where a job reports how far it is: training loops report epochs and batches, other jobs
/// report named stages ("features train", "features val", "probe" ...). One sink serves both so
/// that every job takes the same <see cref="RunContext"/>.
/// </summary>
public interface IRunProgress
{
    void Training(TrainProgress progress);
    void Stage(string stage, int done, int total);

    /// <summary>The same sink for one sub-job of a workflow (its bars titled by <paramref name="job"/>); by default this sink itself.</summary>
    IRunProgress ForJob(string job) => this;
}

/// <summary>Reports nowhere (tests, rank > 0).</summary>
public sealed class SilentProgress : IRunProgress
{
    public static readonly SilentProgress Instance = new();
    public void Training(TrainProgress progress) { }
    public void Stage(string stage, int done, int total) { }
}

/// <summary>Forwards a training loop's reports to an <see cref="IProgress{T}"/> (tests, library callers); stages are dropped.</summary>
public sealed class TrainingProgressSink(IProgress<TrainProgress> sink) : IRunProgress
{
    public void Training(TrainProgress progress) => sink.Report(progress);
    public void Stage(string stage, int done, int total) { }
}
