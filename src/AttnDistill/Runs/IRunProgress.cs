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
}

/// <summary>Reports nowhere (tests, rank > 0).</summary>
public sealed class SilentProgress : IRunProgress
{
    public static readonly SilentProgress Instance = new();
    public void Training(TrainProgress progress) { }
    public void Stage(string stage, int done, int total) { }
}
