using System.Globalization;
using System.Text;
using AttnDistill.Checkpoints;

namespace AttnDistill.Visualization;

/// <summary>What <see cref="RunReport.Write"/> produced.</summary>
public sealed record RunReportResult(string MarkdownPath, IReadOnlyList<string> Plots, IReadOnlyList<RunRecord> Runs, bool Ablation);

/// <summary>
/// <c>attndistill report</c>: reads the runs' config.yaml, metrics.json and log.txt and writes
/// report.md with the results table (in the layout of the supplement's Table 10 when the runs are
/// an ablation), top-1 bars per run (Figure 6), top-1 against lambda or T (Figure 8) when the runs
/// differ in those, and training curves (loss, its parts, lr) per trainer.
/// </summary>
public static class RunReport
{
    public static RunReportResult Write(IEnumerable<string> runDirs, string outDir, Action<string>? log = null)
    {
        var runs = RunRecord.Discover(runDirs);
        if (runs.Count == 0) throw new ArgumentException("no runs given.");
        Directory.CreateDirectory(outDir);
        var plots = new List<string>();
        string Plot(string file) => Path.Combine(outDir, file);

        var md = new StringBuilder();
        md.Append("# Run report\n\n");
        md.Append($"{runs.Count} run(s), written {DateTime.UtcNow.ToString("yyyy-MM-dd HH:mm", CultureInfo.InvariantCulture)} UTC by `attndistill report`. ");
        md.Append("Accuracies in percent; k-NN at k = 20 unless noted; linear = best head of the lr sweep.\n\n");
        md.Append(FloorNote(runs)).Append(ResultsTable(runs)).Append('\n');
        if (ReportPlots.AccuracyBars(runs, Plot("accuracy.png")))
        {
            plots.Add(Plot("accuracy.png"));
            md.Append("![Top-1 per run (supplement Figure 6 layout)](accuracy.png)\n\n");
        }

        bool ablation = AblationTable.IsAblation(runs);
        if (ablation)
        {
            md.Append("## Ablation (supplement Table 10 layout)\n\n");
            md.Append("PA = CLS feature alignment (w_cls > 0); rows are settings, runs sharing one are averaged (mean ± sd).\n\n");
            md.Append(AblationTable.Markdown(runs)).Append('\n');
            foreach (var (setting, label, file) in new[] { ("weight-attn", "λ (weight-attn)", "vs-lambda.png"), ("attn-T", "T (attn-T)", "vs-T.png") })
            {
                if (!ReportPlots.MetricVsSetting(runs, setting, label, Plot(file))) continue;
                plots.Add(Plot(file));
                md.Append($"![top-1 against {label} (supplement Figure 8)]({file})\n\n");
            }
        }

        var kinds = runs.SelectMany(r => r.Kinds).Distinct().ToList();
        if (kinds.Count > 0) md.Append("## Training curves\n\n");
        foreach (string kind in kinds)
        {
            md.Append($"### {kind}\n\n");
            var keys = runs.SelectMany(r => r.Steps.Where(s => s.Kind == kind).SelectMany(s => s.Values.Keys)).Distinct().ToList();
            var order = new[] { "loss" }.Concat(keys.Where(k => k.StartsWith("loss_", StringComparison.Ordinal)).Order()).Append("lr");
            // A single part equals the total: draw the parts only when there are several.
            bool parts = keys.Count(k => k.StartsWith("loss_", StringComparison.Ordinal)) > 1;
            foreach (string key in order.Where(keys.Contains))
            {
                if (key.StartsWith("loss_", StringComparison.Ordinal) && !parts) continue;
                string file = $"{key}-{AttentionPanels.Sanitize(kind)}.png";
                if (!ReportPlots.Curves(runs, kind, key, Plot(file))) continue;
                plots.Add(Plot(file));
                md.Append($"![{kind} {key}]({file})\n\n");
            }
        }

        md.Append("## Runs\n\n");
        foreach (var r in runs) md.Append($"- `{r.Name}`: `{r.Dir}`\n");
        string path = Path.Combine(outDir, "report.md");
        AtomicFile.Write(path, s => s.Write(Encoding.UTF8.GetBytes(md.ToString())));
        log?.Invoke($"report: {path} ({plots.Count} plots)");
        return new RunReportResult(path, plots, runs, ablation);
    }

    /// <summary>One row per run: role, trainers, settings, epochs, final loss and every measured accuracy.</summary>
    public static string ResultsTable(IReadOnlyList<RunRecord> runs)
    {
        var ks = runs.Select(r => r.Knn?.K).OfType<int>().Distinct().ToList();
        var sb = new StringBuilder();
        sb.Append("| run | role | trainer | settings | epochs | final loss | k-NN top-1 | k-NN top-5 | linear top-1 | linear top-5 | fine-tune top-1 | pixel floor k-NN / linear (Δ) |\n");
        sb.Append("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n");
        foreach (var r in runs)
        {
            var floor = r.FloorAmong(runs);
            string knnNote = r.Knn is { } k && (ks.Count > 1 || k.K != 20) ? $" (k = {k.K})" : "";
            sb.Append("| ").Append(string.Join(" | ", new[]
            {
                r.Name,
                r.IsPixelFloor ? "pixel floor" : r.IsTeacher ? "teacher" : r.IsDistillation ? "student" : "evaluation",
                r.Kinds.Count > 0 ? string.Join(", ", r.Kinds) : "-",
                r.IsDistillation && r.Config.Count > 0 ? Describe(r) : "-",
                r.Epochs?.ToString(CultureInfo.InvariantCulture) ?? "-",
                r.FinalLoss?.ToString("G4", CultureInfo.InvariantCulture) ?? "-",
                Pct(r.Knn?.Top1) + knnNote, Pct(r.Knn?.Top5), Pct(r.Linear?.Top1), Pct(r.Linear?.Top5), Pct(r.Finetune?.Top1),
                r.IsPixelFloor ? "(this run)" : floor is null ? "no floor run" : $"{VsFloor(r.Knn?.Top1, floor.Knn?.Top1)} / {VsFloor(r.Linear?.Top1, floor.Linear?.Top1)}",
            })).Append(" |\n");
        }
        return sb.ToString();
    }

    /// <summary>"floor (Δ +x.xx)": the floor's figure and how far the model is above it.</summary>
    static string VsFloor(double? model, double? floor) =>
        floor is not double f || !double.IsFinite(f) ? "-"
        : model is double m && double.IsFinite(m) ? $"{Pct(f)} (Δ {(m - f).ToString("+0.00;-0.00;0.00", CultureInfo.InvariantCulture)})" : Pct(f);

    /// <summary>
    /// The line above the results table: the pixel floor's figures, or how to make one (no model
    /// is reported without the floor beside it).
    /// </summary>
    public static string FloorNote(IReadOnlyList<RunRecord> runs)
    {
        var floors = runs.Where(r => r.IsPixelFloor).ToList();
        if (floors.Count == 0)
            return "**No pixel floor among these runs.** Evaluate it into the run tree and report again: " +
                "`attndistill knn --checkpoint pixels --data DATA --image-size S --out RUNS/pixels` (and `attndistill linear --checkpoint pixels ... --out RUNS/pixels`).\n\n";
        var sb = new StringBuilder();
        foreach (var f in floors)
            sb.Append($"Pixel floor (`knn`/`linear --checkpoint pixels`: the normalized evaluation pixels, flattened){(f.DataRoot is { } d ? $" on `{d}`" : "")}{(f.ImageSize is { } s ? $" at {s} px" : "")}: ")
              .Append($"k-NN top-1 {Pct(f.Knn?.Top1)}, linear top-1 {Pct(f.Linear?.Top1)}.\n");
        return sb.Append('\n').ToString();
    }

    static string Describe(RunRecord r)
    {
        var s = AblationTable.Settings(r);
        var parts = new List<string> { $"{s["Layers"]}L/{s["Heads"]}H/p{s["Patch size"]}, P{s["P layers"]}" };
        if (s["CompRes KD"] == "✓") parts.Add("CompRess");
        if (s["AttnDistill"] != "✗") parts.Add($"λ {s["Attn λ"]}, T {s["Attn T"]}, aggr {s["Attn Aggr"]}, {s["Attn Layer"]} block");
        else parts.Add("λ 0");
        if (r.Text("seed") is { } seed) parts.Add($"seed {seed}");
        return string.Join("; ", parts);
    }

    static string Pct(double? v) => v is double d && double.IsFinite(d) ? d.ToString("F2", CultureInfo.InvariantCulture) : "-";
}
