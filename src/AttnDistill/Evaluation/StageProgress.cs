namespace AttnDistill.Evaluation;

/// <summary>Progress of a multi-stage job ("features train", "features val", "probe" ...): (stage, done, total).</summary>
public delegate void StageProgress(string stage, int done, int total);

internal sealed class StageReporter(StageProgress? sink, string stage) : IProgress<(int Done, int Total)>
{
    public void Report((int Done, int Total) value) => sink?.Invoke(stage, value.Done, value.Total);
}
