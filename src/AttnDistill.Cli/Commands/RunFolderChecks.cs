using System.CommandLine;

namespace AttnDistill.Cli.Commands;

/// <summary>Where a run folder may not be.</summary>
public static class RunFolderChecks
{
    /// <summary>
    /// --out inside --data is refused: the run's own folders (tensorboard/, checkpoints) would
    /// become classes or images of the data set the next time it is read.
    /// </summary>
    public static void OutsideData(string outDir, ParseResult parsed)
    {
        if (parsed.CommandResult.Command.Options.FirstOrDefault(o => o.Name == "--data") is not Option<string> dataOption) return;
        if (parsed.GetValue(dataOption) is not { Length: > 0 } data || !Directory.Exists(data)) return;
        string outReal = Data.ImageFolderDatasetPaths.Real(outDir), dataReal = Data.ImageFolderDatasetPaths.Real(data);
        if (outReal == dataReal || outReal.StartsWith(dataReal.TrimEnd('/') + "/", StringComparison.Ordinal))
            throw new ArgumentException($"--out {outDir} is inside --data {data}: the run's files would become part of the data set (a class named 'tensorboard'); choose an --out outside it.");
    }
}
