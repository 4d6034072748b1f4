namespace AttnDistill.Checkpoints;

/// <summary>
/// A state dict that does not fit a model: lists every missing, unexpected and mismatched key with
/// shapes, and the architecture each side describes.
/// </summary>
public sealed class CheckpointMismatchException : Exception
{
    public IReadOnlyList<string> Missing { get; }
    public IReadOnlyList<string> Unexpected { get; }
    public IReadOnlyList<(string Key, long[] Checkpoint, long[] Model)> Mismatched { get; }

    public CheckpointMismatchException(string message, IReadOnlyList<string> missing, IReadOnlyList<string> unexpected,
        IReadOnlyList<(string Key, long[] Checkpoint, long[] Model)> mismatched) : base(message)
    {
        Missing = missing;
        Unexpected = unexpected;
        Mismatched = mismatched;
    }
}
