using System.Globalization;
using System.Text.RegularExpressions;
using AttnDistill.Checkpoints;

namespace AttnDistill.Training;

/// <summary>Naming, finding and pruning of <c>checkpoint-*.ckpt</c> files in a run folder.</summary>
public static partial class CheckpointFiles
{
    [GeneratedRegex(@"^checkpoint-(\d+)(?:-(\d+))?\.ckpt$")]
    private static partial Regex Pattern();

    /// <summary>checkpoint-0012.ckpt after epoch 12; checkpoint-0012-000340.ckpt when stopped at batch 340 of epoch 12.</summary>
    public static string PathFor(string dir, int epoch, int batch) =>
        Path.Combine(dir, batch == 0 ? $"checkpoint-{epoch:D4}.ckpt" : $"checkpoint-{epoch:D4}-{batch:D6}.ckpt");

    /// <summary>All checkpoints of a folder, newest position first.</summary>
    public static IReadOnlyList<string> List(string dir)
    {
        if (!Directory.Exists(dir)) return Array.Empty<string>();
        return Directory.EnumerateFiles(dir, "checkpoint-*.ckpt")
            .Select(p => (Path: p, M: Pattern().Match(Path.GetFileName(p))))
            .Where(x => x.M.Success)
            .OrderByDescending(x => long.Parse(x.M.Groups[1].Value, CultureInfo.InvariantCulture))
            .ThenByDescending(x => x.M.Groups[2].Success ? long.Parse(x.M.Groups[2].Value, CultureInfo.InvariantCulture) : 0)
            .Select(x => x.Path).ToArray();
    }

    /// <summary>The newest checkpoint that loads; unreadable ones are reported and passed over.</summary>
    public static (string Path, TrainingCheckpoint Checkpoint)? Newest(string dir, Action<string>? log)
    {
        foreach (var path in List(dir))
        {
            try { return (path, TrainingCheckpoint.Load(path)); }
            catch (Exception ex) when (ex is CheckpointFormatException or IOException or InvalidDataException)
            {
                log?.Invoke($"skipping unreadable checkpoint {path}: {ex.Message}");
            }
        }
        return null;
    }

    /// <summary>Removes all but the <paramref name="count"/> newest checkpoints (never <paramref name="keep"/>).</summary>
    public static void Prune(string dir, int count, string keep)
    {
        foreach (var old in List(dir).Skip(Math.Max(1, count)))
            if (!string.Equals(old, keep, StringComparison.Ordinal)) File.Delete(old);
    }
}
