namespace AttnDistill.Checkpoints;

/// <summary>The check every checkpoint reader makes before it opens a path (see <see cref="RegularFile"/>).</summary>
internal static class CheckpointFileCheck
{
    /// <summary>Throws <see cref="FileNotFoundException"/> for a missing path, <see cref="CheckpointFormatException"/> for a folder, FIFO or device.</summary>
    public static void Require(string path)
    {
        switch (RegularFile.Problem(path))
        {
            case null: return;
            case "does not exist": throw new FileNotFoundException($"checkpoint not found: {path}", path);
            case var problem: throw new CheckpointFormatException($"{path} {problem}; refused before opening it: give the path of a checkpoint file.");
        }
    }
}
