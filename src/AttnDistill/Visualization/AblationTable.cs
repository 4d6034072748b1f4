using System.Globalization;
using System.Text;
using AttnDistill.Checkpoints;
using AttnDistill.Models;

namespace AttnDistill.Visualization;

/// <summary>
/// Distillation runs in the layout of the supplement's Table 10: one row per setting (runs that
/// differ only in seed are one row, mean +- standard deviation over them), the columns of the paper
/// (layers, heads, patch size, PA = CLS feature alignment, patch-token align, CompRess KD, P layers,
/// attention layer, AttnDistill, aggregation, interpolation, lambda, T, evaluation P layer, linear
/// top-1/top-5) plus k-NN top-1, and the "Study on" column naming what varies.
/// </summary>
public static class AblationTable
{
    static readonly string[] SettingColumns =
    {
        "Layers", "Heads", "Patch size", "PA", "Patch token align", "CompRes KD", "P layers", "Attn Layer", "AttnDistill",
        "Attn Aggr", "Attn Interpolate", "Attn λ", "Attn T", "Evaluation P layer",
    };

    /// <summary>The Table 10 settings of a distillation run, column name -> cell text.</summary>
    public static IReadOnlyDictionary<string, string> Settings(RunRecord run)
    {
        var preset = run.Text("student") is { } name && TryPreset(name) is { } p ? p : null;
        int? depth = (int?)run.Number("student-depth") ?? preset?.Depth;
        int? heads = (int?)run.Number("student-heads") ?? preset?.NumHeads;
        int? patch = (int?)run.Number("student-patch") ?? preset?.PatchSize;
        double lambda = run.Number("weight-attn") ?? 0;
        bool attn = lambda > 0 && run.Text("method") is null or "attndistill";
        string aggregation = run.Text("aggregation") ?? "product";
        bool compress = run.Text("method") == "compress";
        int? teacherPatch = run.Text("teacher") is { } t ? TeacherPatch(t) : null;
        bool interpolated = attn && (run.Flag("interpolate") ?? true) && teacherPatch is int tp && patch is int sp && tp != sp;
        var cells = new Dictionary<string, string>
        {
            ["Layers"] = depth?.ToString(CultureInfo.InvariantCulture) ?? "?",
            ["Heads"] = heads?.ToString(CultureInfo.InvariantCulture) ?? "?",
            ["Patch size"] = patch?.ToString(CultureInfo.InvariantCulture) ?? "?",
            ["PA"] = Check((run.Number("weight-cls") ?? 1) > 0),
            ["Patch token align"] = Check(run.Flag("patch-token-align") ?? false),
            ["CompRes KD"] = Check(compress),
            ["P layers"] = run.Text("proj-layers") ?? "?",
            ["Attn Layer"] = attn ? ((run.Flag("attn-all-blocks") ?? false) ? "all" : "last") : "-",
            ["AttnDistill"] = Check(attn),
            ["Attn Aggr"] = attn && aggregation != "none" ? (aggregation == "product" ? "✓" : aggregation.ToUpperInvariant()) : "✗",
            ["Attn Interpolate"] = Check(interpolated),
            ["Attn λ"] = attn ? Format(lambda) : "-",
            ["Attn T"] = attn && aggregation != "none" ? Format(run.Number("attn-T") ?? 10) : "-",
            ["Evaluation P layer"] = run.EvalLayer.ToString(CultureInfo.InvariantCulture),
        };
        if (attn && (run.Flag("weight-by-value") ?? false)) cells["Attn Aggr"] += " (value-weighted)";
        if (attn && run.Text("attn-loss") is { } loss && loss.Equals("mse", StringComparison.OrdinalIgnoreCase)) cells["AttnDistill"] = "✓ (MSE)";
        return cells;
    }

    /// <summary>True when the runs are an ablation: at least two distillation runs with settings that differ in some Table 10 column.</summary>
    public static bool IsAblation(IReadOnlyList<RunRecord> runs)
    {
        var distill = runs.Where(r => r.IsDistillation && r.Config.Count > 0).ToList();
        return distill.Count >= 2 && StudiedColumns(distill.Select(Settings).ToList()).Count > 0;
    }

    /// <summary>The Markdown table (with a caption line naming the teacher when all runs share one).</summary>
    public static string Markdown(IReadOnlyList<RunRecord> runs)
    {
        var distill = runs.Where(r => r.IsDistillation && r.Config.Count > 0).ToList();
        var rows = distill.GroupBy(r => Key(Settings(r))).Select(g => (Settings: Settings(g.First()), Runs: g.ToList()))
            .OrderBy(r => r.Settings["AttnDistill"] == "✗" ? 0 : 1)
            .ThenBy(r => Numeric(r.Settings["Layers"])).ThenBy(r => Numeric(r.Settings["Heads"])).ThenBy(r => Numeric(r.Settings["Patch size"]))
            .ThenBy(r => Numeric(r.Settings["P layers"])).ThenBy(r => r.Settings["CompRes KD"]).ThenBy(r => r.Settings["Attn Aggr"])
            .ThenBy(r => Numeric(r.Settings["Attn λ"])).ThenBy(r => Numeric(r.Settings["Attn T"])).ThenBy(r => Numeric(r.Settings["Evaluation P layer"]))
            .ToList();
        var varying = StudiedColumns(rows.Select(r => r.Settings).ToList());
        var sb = new StringBuilder();
        var teachers = distill.Select(r => r.Text("teacher")).Distinct().ToList();
        if (teachers.Count == 1 && teachers[0] is { } teacher) sb.Append($"Teacher: `{teacher}`.\n\n");
        var floor = distill.Select(r => r.FloorAmong(runs)).FirstOrDefault(f => f is not null);
        sb.Append(floor is null ? "Pixel floor: no `--checkpoint pixels` run among these runs.\n\n"
            : $"Pixel floor: k-NN top-1 {MeanSd(new[] { floor.Knn?.Top1 })}, linear top-1 {MeanSd(new[] { floor.Linear?.Top1 })}.\n\n");
        var header = new[] { "Study on" }.Concat(SettingColumns).Concat(new[] { "Top-1 LP", "Top-5 LP", "k-NN top-1", "runs" }).ToList();
        sb.Append("| ").Append(string.Join(" | ", header)).Append(" |\n");
        sb.Append('|').Append(string.Concat(header.Select(_ => " --- |"))).Append('\n');
        for (int i = 0; i < rows.Count; i++)
        {
            var (settings, group) = rows[i];
            string study = i == 0 ? (varying.Count == 0 ? "-" : string.Join(", ", varying)) : "";
            var cells = new List<string> { study };
            cells.AddRange(SettingColumns.Select(c => settings[c]));
            cells.Add(MeanSd(group.Select(r => r.Linear?.Top1)));
            cells.Add(MeanSd(group.Select(r => r.Linear?.Top5)));
            cells.Add(MeanSd(group.Select(r => r.Knn?.Top1)));
            cells.Add(string.Join(", ", group.Select(r => r.Name)));
            sb.Append("| ").Append(string.Join(" | ", cells)).Append(" |\n");
        }
        return sb.ToString();
    }

    /// <summary>"mean" for one value, "mean ± sd" for several, "-" for none (percent, 1 decimal as the paper).</summary>
    public static string MeanSd(IEnumerable<double?> values)
    {
        var v = values.Where(x => x is double d && double.IsFinite(d)).Select(x => x!.Value).ToList();
        if (v.Count == 0) return "-";
        double mean = v.Average();
        if (v.Count == 1) return mean.ToString("F1", CultureInfo.InvariantCulture);
        double sd = Math.Sqrt(v.Sum(x => (x - mean) * (x - mean)) / (v.Count - 1));
        return $"{mean.ToString("F1", CultureInfo.InvariantCulture)} ± {sd.ToString("F1", CultureInfo.InvariantCulture)}";
    }

    static readonly string[] AttentionColumns = { "Attn Layer", "Attn Aggr", "Attn Interpolate", "Attn λ", "Attn T" };

    /// <summary>
    /// The columns a set of rows studies: those that vary among the rows with the attention term,
    /// "AttnDistill" when rows with and without it are compared (the attention columns of a lambda-0
    /// row are "-" by definition and do not count), and the other columns that vary among all rows.
    /// </summary>
    static List<string> StudiedColumns(IReadOnlyList<IReadOnlyDictionary<string, string>> rows)
    {
        var on = rows.Where(r => r["AttnDistill"] != "✗").ToList();
        return SettingColumns.Where(c =>
            c == "AttnDistill" ? rows.Select(r => r[c]).Distinct().Count() > 1
            : AttentionColumns.Contains(c) ? on.Select(r => r[c]).Distinct().Count() > 1
            : rows.Select(r => r[c]).Distinct().Count() > 1).ToList();
    }

    static double Numeric(string cell) =>
        double.TryParse(cell, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) ? d : double.NegativeInfinity;

    static string Key(IReadOnlyDictionary<string, string> settings) => string.Join("|", SettingColumns.Select(c => settings[c]));

    static string Check(bool b) => b ? "✓" : "✗";

    static string Format(double d) => d.ToString("0.0##", CultureInfo.InvariantCulture);

    static VitConfig? TryPreset(string name)
    {
        try { return VitPresets.Get(name); }
        catch (ArgumentException) { return null; }
    }

    /// <summary>The teacher's patch size from a safetensors header (no tensor data read); null for other formats or a missing file.</summary>
    static int? TeacherPatch(string path)
    {
        try
        {
            if (!File.Exists(path) || !path.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase)) return null;
            var (tensors, _) = SafetensorsFile.ReadHeader(path);
            var w = tensors.FirstOrDefault(t => t.Name.EndsWith("patch_embed.proj.weight", StringComparison.Ordinal));
            return w.Shape is { Length: 4 } s ? (int)s[2] : null;
        }
        catch (Exception ex) when (ex is IOException or InvalidDataException or CheckpointFormatException)
        {
            return null;
        }
    }
}
