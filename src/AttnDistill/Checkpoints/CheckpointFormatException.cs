namespace AttnDistill.Checkpoints;

/// <summary>
/// A checkpoint file that cannot be read: unknown, legacy, truncated or corrupt. The message names the
/// file and what to do about it.
/// </summary>
public sealed class CheckpointFormatException : Exception
{
    public CheckpointFormatException(string message) : base(message) { }
    public CheckpointFormatException(string message, Exception inner) : base(message, inner) { }
}
