using System.Globalization;
using ScottPlot;

namespace AttnDistill.Visualization;

/// <summary>
/// The PNG plots of a run report, drawn with ScottPlot: training curves per trainer kind, top-1
/// bars per run (supplement Figure 6) and top-1 against lambda or T (Figure 8).
/// </summary>
public static class ReportPlots
{
    public const int Width = 900, Height = 500;

    /// <summary>One line per run of <paramref name="key"/> ("loss", "loss_attn", "lr" ...) over fractional epochs of the trainer <paramref name="kind"/>; a log axis for losses.</summary>
    public static bool Curves(IReadOnlyList<RunRecord> runs, string kind, string key, string path)
    {
        var plot = new Plot();
        bool log = key.StartsWith("loss", StringComparison.Ordinal);
        int series = 0;
        foreach (var run in runs)
        {
            var points = run.Steps.Where(s => s.Kind == kind && s.Values.TryGetValue(key, out var v) && (!log || v > 0)).ToList();
            if (points.Count == 0) continue;
            double[] xs = points.Select(p => p.Epoch).ToArray();
            double[] ys = points.Select(p => log ? Math.Log10(p.Values[key]) : p.Values[key]).ToArray();
            var line = plot.Add.ScatterLine(xs, ys);
            line.LegendText = run.Name;
            line.LineWidth = 2;
            line.MarkerSize = points.Count < 30 ? 5 : 0;
            series++;
        }
        if (series == 0) return false;
        if (log) LogAxis(plot);
        plot.Title($"{kind}: {key}");
        plot.XLabel("epoch");
        plot.YLabel(log ? $"{key} (log scale)" : key);
        plot.ShowLegend(Edge.Right);
        plot.SavePng(path, Width, Height);
        return true;
    }

    /// <summary>Figure 6: linear-probe and k-NN top-1 per run as grouped bars; teachers in grey.</summary>
    public static bool AccuracyBars(IReadOnlyList<RunRecord> runs, string path)
    {
        var measured = runs.Where(r => r.Linear is not null || r.Knn is not null).ToList();
        if (measured.Count == 0) return false;
        bool anyLinear = measured.Any(r => r.Linear is not null), anyKnn = measured.Any(r => r.Knn is not null);
        var plot = new Plot();
        var bars = new List<Bar>();
        var ticks = new List<Tick>();
        Color studentLinear = Colors.SteelBlue, studentKnn = Colors.Orange, teacherLinear = Colors.DimGray, teacherKnn = Colors.DarkGray;
        for (int i = 0; i < measured.Count; i++)
        {
            var r = measured[i];
            double center = i * 3;
            var values = new List<(double Value, Color Color)>();
            if (anyLinear) values.Add((r.Linear?.Top1 ?? double.NaN, r.IsTeacher ? teacherLinear : studentLinear));
            if (anyKnn) values.Add((r.Knn?.Top1 ?? double.NaN, r.IsTeacher ? teacherKnn : studentKnn));
            for (int j = 0; j < values.Count; j++)
            {
                if (!double.IsFinite(values[j].Value)) continue;
                bars.Add(new Bar
                {
                    Position = center + (j - (values.Count - 1) / 2.0),
                    Value = values[j].Value,
                    FillColor = values[j].Color,
                    Label = values[j].Value.ToString("F1", CultureInfo.InvariantCulture),
                });
            }
            ticks.Add(new Tick(center, (r.IsTeacher ? "teacher: " : "") + r.Name, true));
        }
        var barPlot = plot.Add.Bars(bars);
        barPlot.ValueLabelStyle.FontSize = 11;
        plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual(ticks.ToArray());
        plot.Axes.Bottom.TickLabelStyle.Rotation = measured.Count > 4 ? 20 : 0;
        plot.Axes.Bottom.TickLabelStyle.Alignment = measured.Count > 4 ? Alignment.MiddleLeft : Alignment.UpperCenter;
        plot.Axes.Margins(bottom: 0, top: 0.15);
        if (anyLinear) plot.Legend.ManualItems.Add(new LegendItem { LabelText = "linear probe top-1", FillColor = studentLinear });
        if (anyKnn) plot.Legend.ManualItems.Add(new LegendItem { LabelText = "k-NN top-1", FillColor = studentKnn });
        if (measured.Any(r => r.IsTeacher)) plot.Legend.ManualItems.Add(new LegendItem { LabelText = "teacher (grey)", FillColor = teacherLinear });
        plot.ShowLegend(Edge.Right);
        plot.Title("Top-1 accuracy (%) per run");
        plot.YLabel("top-1 (%)");
        plot.SavePng(path, Width, Height + (measured.Count > 4 ? 80 : 0));
        return true;
    }

    /// <summary>
    /// Figure 8: top-1 (linear probe when measured, else k-NN) against a distillation setting
    /// (<c>weight-attn</c> or <c>attn-T</c>), mean +- sd over runs that share it; one line per
    /// combination of the other settings (architecture, and T or lambda). Feature-only runs
    /// (lambda 0) are the lambda = 0 point of every line of their architecture and have no T.
    /// Values sit at evenly spaced positions labelled with the setting (the paper's lambda spans 0.005 .. 5).
    /// </summary>
    public static bool MetricVsSetting(IReadOnlyList<RunRecord> runs, string setting, string label, string path)
    {
        bool sweepT = setting == "attn-T";
        var distill = runs.Where(r => r.IsDistillation && r.Number(setting) is not null && (r.Linear is not null || r.Knn is not null))
            .Where(r => !sweepT || AttentionOn(r)).ToList();
        var xs = distill.Select(r => r.Number(setting)!.Value).Distinct().Order().ToList();
        if (xs.Count < 2) return false;
        bool linear = distill.Any(r => r.Linear is not null);
        double? Metric(RunRecord r) => linear ? r.Linear?.Top1 : r.Knn?.Top1;

        var baselines = distill.Where(r => !AttentionOn(r)).ToList();
        var lines = distill.Where(AttentionOn).GroupBy(r => Architecture(r) + Others(r, sweepT))
            .Select(g => (Name: g.Key, Runs: g.Concat(baselines.Where(b => Architecture(b) == Architecture(g.First()))).ToList())).ToList();
        foreach (var orphan in baselines.GroupBy(Architecture).Where(g => lines.All(l => !l.Name.StartsWith(g.Key, StringComparison.Ordinal))))
            lines.Add((orphan.Key, orphan.ToList()));

        var plot = new Plot();
        foreach (var (name, group) in lines)
        {
            var points = group.GroupBy(r => r.Number(setting)!.Value).OrderBy(g => g.Key)
                .Select(g => (X: (double)xs.IndexOf(g.Key), Values: g.Select(Metric).OfType<double>().ToList()))
                .Where(p => p.Values.Count > 0).ToList();
            if (points.Count == 0) continue;
            double[] px = points.Select(p => p.X).ToArray();
            double[] mean = points.Select(p => p.Values.Average()).ToArray();
            double[] sd = points.Select(p => StandardDeviation(p.Values)).ToArray();
            var line = plot.Add.Scatter(px, mean);
            line.LegendText = name;
            line.MarkerSize = 8;
            line.LineWidth = 2;
            if (sd.Any(v => v > 0)) plot.Add.ErrorBar(px, mean, sd).Color = line.Color;
        }
        plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual(
            xs.Select((x, i) => new Tick(i, x.ToString("G4", CultureInfo.InvariantCulture), true)).ToArray());
        plot.Axes.Margins(horizontal: 0.1, vertical: 0.2);
        plot.Title($"{(linear ? "linear probe" : "k-NN")} top-1 against {label} (mean ± sd over runs)");
        plot.XLabel(label);
        plot.YLabel("top-1 (%)");
        plot.ShowLegend(Edge.Right);
        plot.SavePng(path, Width, Height);
        return true;
    }

    static bool AttentionOn(RunRecord r) => AblationTable.Settings(r)["AttnDistill"] != "✗";

    static string Architecture(RunRecord r)
    {
        var s = AblationTable.Settings(r);
        return $"{s["Layers"]} layers, {s["Heads"]} heads, patch {s["Patch size"]}";
    }

    /// <summary>The attention settings other than the swept one, for a line's legend.</summary>
    static string Others(RunRecord r, bool sweepT)
    {
        var s = AblationTable.Settings(r);
        var parts = new List<string> { sweepT ? $"λ {s["Attn λ"]}" : $"T {s["Attn T"]}" };
        if (s["Attn Aggr"] != "✓") parts.Add(s["Attn Aggr"]);
        return "; " + string.Join(", ", parts);
    }

    static double StandardDeviation(IReadOnlyList<double> v)
    {
        if (v.Count < 2) return 0;
        double mean = v.Average();
        return Math.Sqrt(v.Sum(x => (x - mean) * (x - mean)) / (v.Count - 1));
    }

    static void LogAxis(Plot plot)
    {
        var ticks = new ScottPlot.TickGenerators.NumericAutomatic
        {
            MinorTickGenerator = new ScottPlot.TickGenerators.LogMinorTickGenerator(),
            IntegerTicksOnly = true,
            LabelFormatter = y => Math.Pow(10, y).ToString("G3", CultureInfo.InvariantCulture),
        };
        plot.Axes.Left.TickGenerator = ticks;
    }
}
