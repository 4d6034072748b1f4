namespace AttnDistill.Checkpoints;

/// <summary>The check every checkpoint reader makes before it opens a path (see <see cref="RegularFile"/>).</summary>
internal static class CheckpointFileCheck
{
    /// <summary>Throws <see cref="FileNotFoundException"/> for a missing path, <see cref="CheckpointFormatException"/> for a folder, FIFO or device.</summary>
    public static void Require(string path)
    {
        switch (RegularFile.Of(path))
        {
            case RegularFile.Kind.Regular: return;
            case RegularFile.Kind.Missing: throw new FileNotFoundException($"checkpoint not found: {path}", path);
            default: throw new CheckpointFormatException($"{path} {RegularFile.Problem(path)}; refused before opening it: give the path of a checkpoint file.");
        }
    }
}
