using System.Globalization;
using System.Text;
using AttnDistill.Training;

namespace AttnDistill.Evaluation;

/// <summary>One run of a fine-tuning lr sweep: its base lr, the peak lr it trained with and what it reached.</summary>
public sealed record FinetuneSweepRow(double BaseLr, double PeakLr, FinetuneJobResult Result, string RunDir);

/// <summary>
/// `finetune --blr a,b,c`: the protocols report the best of a small lr sweep (MAE's and BEiT's
/// fine-tuning tables), so each base lr gets a run of its own (OUT/blr-VALUE, a normal run folder:
/// resumable, its own config.yaml) and OUT/blr-sweep.md holds one table over them.
/// </summary>
public static class FinetuneSweep
{
    public static string RunDir(string outDir, double baseLr) => Path.Combine(outDir, "blr-" + baseLr.ToString("R", CultureInfo.InvariantCulture));

    /// <summary>Writes OUT/blr-sweep.md and the sweep's section of OUT/metrics.json; returns the table's path.</summary>
    public static string WriteTable(string outDir, IReadOnlyList<FinetuneSweepRow> rows)
    {
        Directory.CreateDirectory(outDir);
        var best = rows.MaxBy(r => r.Result.Best.Top1);
        var md = new StringBuilder();
        md.AppendLine("# Fine-tuning lr sweep");
        md.AppendLine();
        md.AppendLine("| blr | peak lr | best top-1 (epoch) | last top-1 | last top-5 | run |");
        md.AppendLine("|---|---|---|---|---|---|");
        foreach (var r in rows)
            md.AppendLine(FormattableString.Invariant(
                $"| {r.BaseLr:G3}{(r == best ? " (best)" : "")} | {r.PeakLr:G3} | {r.Result.Best.Top1:F2} % ({r.Result.BestEpoch}) | {r.Result.Final.Top1:F2} % | {r.Result.Final.Top5:F2} % | {Path.GetFileName(r.RunDir)} |"));
        string path = Path.Combine(outDir, "blr-sweep.md");
        Checkpoints.AtomicFile.Write(path, s => s.Write(Encoding.UTF8.GetBytes(md.ToString())));
        MetricsFile.Merge(Path.Combine(outDir, "metrics.json"), "finetune_blr_sweep", new Dictionary<string, object>
        {
            ["best_blr"] = best?.BaseLr ?? double.NaN,
            ["runs"] = rows.Select(r => new Dictionary<string, object>
            {
                ["blr"] = r.BaseLr, ["peak_lr"] = r.PeakLr, ["best_top1"] = r.Result.Best.Top1, ["best_epoch"] = r.Result.BestEpoch,
                ["top1"] = r.Result.Final.Top1, ["top5"] = r.Result.Final.Top5, ["run"] = r.RunDir,
            }).ToArray(),
        });
        return path;
    }
}
