using System.Globalization;
using System.Text.Json;
using AttnDistill.Tests.TestSupport;
using AttnDistill.Visualization;
using Xunit;
using F = AttnDistill.Tests.Visualization.VisualizationFixtures;

namespace AttnDistill.Tests.Visualization;

/// <summary>Reports over run folders written the way the commands write them (config.yaml, metrics.json, log.txt).</summary>
public class RunReportTests
{
    /// <summary>A teacher run and distillation runs sweeping lambda (two seeds each for 0 and 0.1) and T, each with a k-NN evaluation in RUN/knn.</summary>
    static string WriteAblation()
    {
        string root = Directory.CreateTempSubdirectory("attndistill-report-").FullName;
        string teacherDir = Path.Combine(root, "teacher");
        Directory.CreateDirectory(teacherDir);
        File.WriteAllText(Path.Combine(teacherDir, "teacher.safetensors"), "");
        WriteLog(teacherDir, "pretrain-mae", 3, e => 1.0 / (e + 1));
        WriteJson(Path.Combine(teacherDir, "metrics.json"), new { pretrain_mae = new { epochs = 3, final_loss = new { loss = 0.3 } }, knn = new[] { new { k = 20, top1 = 60.0, top5 = 90.0 } } });

        var rows = new (string Name, double Lambda, double T, int Seed, double Knn, double? Linear)[]
        {
            ("lambda0-s0", 0, 10, 0, 50, 55), ("lambda0-s1", 0, 10, 1, 52, 57),
            ("lambda0.1-s0", 0.1, 10, 0, 54, 59), ("lambda0.1-s1", 0.1, 10, 1, 56, 61),
            ("lambda0.5-s0", 0.5, 10, 0, 53, null), ("T5-s0", 0.1, 5, 0, 51, 56), ("T20-s0", 0.1, 20, 0, 52, 58),
        };
        foreach (var r in rows)
        {
            string dir = Path.Combine(root, "students", r.Name);
            Directory.CreateDirectory(dir);
            File.WriteAllText(Path.Combine(dir, "config.yaml"), string.Join("\n",
                "# attndistill distill, resolved 2026-01-01 00:00:00Z", "data: /data/cifar10", $"teacher: {Path.Combine(teacherDir, "teacher.safetensors")}",
                "teacher-heads: null", "student: mae_vit_tiny_patch16", "student-patch: 8", "student-depth: 4", "student-heads: 3", "student-dim: 48",
                "image-size: 32", "proj-layers: 2", "weight-cls: 1", $"weight-attn: {r.Lambda.ToString(CultureInfo.InvariantCulture)}",
                $"attn-T: {r.T.ToString(CultureInfo.InvariantCulture)}", "aggregation: product", "interpolate: true", "attn-all-blocks: false",
                "weight-by-value: false", "attn-loss: kl", "patch-token-align: false", "method: attndistill", $"seed: {r.Seed}", ""));
            WriteLog(dir, "distill", 3, e => 2.0 / (e + 1) + r.Lambda, attn: r.Lambda > 0);
            WriteJson(Path.Combine(dir, "metrics.json"), new { distill = new { epochs = 3, final_loss = new { loss = 0.5, cls = 0.4, attn = 0.1 } } });
            string knn = Path.Combine(dir, "knn");
            Directory.CreateDirectory(knn);
            File.WriteAllText(Path.Combine(knn, "config.yaml"), $"data: /data/cifar10\ncheckpoint: {Path.Combine(dir, "backbone.safetensors")}\neval-layer: 0\n");
            WriteJson(Path.Combine(knn, "metrics.json"), new { knn = new[] { new { k = 10, top1 = r.Knn - 1, top5 = 80.0 }, new { k = 20, top1 = r.Knn, top5 = 85.0 } } });
            if (r.Linear is double lin)
                WriteJson(Path.Combine(dir, "metrics.json"), new
                {
                    distill = new { epochs = 3, final_loss = new { loss = 0.5, cls = 0.4, attn = 0.1 } },
                    linear = new { best = new { base_lr = 0.1, lr = 0.01, top1 = lin, top5 = 95.0 }, sweep = Array.Empty<object>() },
                });
        }
        return root;
    }

    static void WriteLog(string dir, string kind, int epochs, Func<double, double> loss, bool attn = false)
    {
        var lines = new List<string>();
        for (int e = 0; e < epochs; e++)
        {
            for (int b = 0; b < 10; b += 3)
            {
                double x = e + b / 10.0;
                var fields = new Dictionary<string, object> { ["kind"] = kind, ["epoch"] = e, ["batch"] = b, ["lr"] = 1e-3 * Math.Min(1, x), ["loss"] = loss(x) };
                if (kind == "distill") { fields["loss_cls"] = loss(x) * 0.9; fields["loss_attn"] = attn ? loss(x) * 0.1 : 0.0; }
                lines.Add(JsonSerializer.Serialize(fields));
            }
            lines.Add(JsonSerializer.Serialize(new Dictionary<string, object> { ["kind"] = kind, ["epoch"] = e, ["batch"] = 9, ["lr"] = 1e-3, ["loss"] = "NaN" }));
            lines.Add(JsonSerializer.Serialize(new Dictionary<string, object> { ["kind"] = kind, ["epoch"] = e, ["skipped"] = 0, ["train_loss"] = loss(e) }));
        }
        File.WriteAllLines(Path.Combine(dir, "log.txt"), lines);
    }

    static void WriteJson(string path, object value) => File.WriteAllText(path, JsonSerializer.Serialize(value));

    [Fact]
    public void ReadsRunsWithTheirEvaluationsAndMarksTheTeacher()
    {
        string root = WriteAblation();
        var runs = RunRecord.Discover(new[] { root });
        Assert.Equal(8, runs.Count);
        Assert.True(runs[0].IsTeacher);                                                  // teachers first
        Assert.Equal("teacher", runs[0].Name);
        var r = runs.Single(x => x.Name == "lambda0.1-s1");
        Assert.False(r.IsTeacher);
        Assert.Equal((20, 56.0, 85.0), r.Knn);                                            // merged from RUN/knn, k = 20 picked
        Assert.Equal(61.0, r.Linear!.Value.Top1);
        Assert.Equal(0.1, r.Number("weight-attn"));
        Assert.Equal(new[] { "distill" }, r.Kinds);
        Assert.Equal(15, r.Steps.Count);                                                  // NaN losses keep their lr
        Assert.Equal(3.0, r.Steps.Last().Epoch, 6);                                       // fractional epochs: last batch ends the epoch
        Assert.False(r.Steps.Last().Values.ContainsKey("loss"));
    }

    [Fact]
    public void AblationReportHasTable10AndThePlots()
    {
        string root = WriteAblation();
        string outDir = Directory.CreateTempSubdirectory("report-out").FullName;
        var result = RunReport.Write(new[] { root }, outDir);
        Assert.True(result.Ablation);
        string md = File.ReadAllText(result.MarkdownPath);
        Assert.Contains("## Ablation (supplement Table 10 layout)", md);
        Assert.Contains("| Study on | Layers | Heads | Patch size | PA | Patch token align | CompRes KD | P layers | Attn Layer | AttnDistill | Attn Aggr | Attn Interpolate | Attn λ | Attn T | Evaluation P layer | Top-1 LP | Top-5 LP | k-NN top-1 | runs |", md);
        // The lambda-0 baseline first, then by lambda and T; seeds of one setting averaged (mean ± sd).
        var table = md.Split('\n').Where(l => l.StartsWith("| AttnDistill") || l.StartsWith("|  | 4")).ToList();
        Assert.Equal(new[]
        {
            "| AttnDistill, Attn λ, Attn T | 4 | 3 | 8 | ✓ | ✗ | ✗ | 2 | - | ✗ | ✗ | ✗ | - | - | 0 | 56.0 ± 1.4 | 95.0 ± 0.0 | 51.0 ± 1.4 | lambda0-s0, lambda0-s1 |",
            "|  | 4 | 3 | 8 | ✓ | ✗ | ✗ | 2 | last | ✓ | ✓ | ✗ | 0.1 | 5.0 | 0 | 56.0 | 95.0 | 51.0 | T5-s0 |",
            "|  | 4 | 3 | 8 | ✓ | ✗ | ✗ | 2 | last | ✓ | ✓ | ✗ | 0.1 | 10.0 | 0 | 60.0 ± 1.4 | 95.0 ± 0.0 | 55.0 ± 1.4 | lambda0.1-s0, lambda0.1-s1 |",
            "|  | 4 | 3 | 8 | ✓ | ✗ | ✗ | 2 | last | ✓ | ✓ | ✗ | 0.1 | 20.0 | 0 | 58.0 | 95.0 | 52.0 | T20-s0 |",
            "|  | 4 | 3 | 8 | ✓ | ✗ | ✗ | 2 | last | ✓ | ✓ | ✗ | 0.5 | 10.0 | 0 | - | - | 53.0 | lambda0.5-s0 |",
        }, table);
        foreach (string plot in new[] { "accuracy.png", "vs-lambda.png", "vs-T.png", "loss-distill.png", "loss_attn-distill.png", "lr-distill.png", "loss-pretrain-mae.png" })
        {
            Assert.Contains($"]({plot})", md);
            Assert.Contains(Path.Combine(outDir, plot), result.Plots);
            using var png = F.AssertPicture(Path.Combine(outDir, plot), ReportPlots.Width, minColours: 8);
        }
    }

    [Fact]
    public void ReportVerbWritesTheReportForARunFolder()
    {
        string root = WriteAblation();
        string outDir = Directory.CreateTempSubdirectory("report-cli").FullName;
        var (code, output) = CliProcess.Attndistill("report", Path.Combine(root, "teacher"), Path.Combine(root, "students", "lambda0-s0"), "--out", outDir);
        Assert.True(code == 0, output);
        string md = File.ReadAllText(Path.Combine(outDir, "report.md"));
        Assert.DoesNotContain("Table 10 layout", md);                                  // one distillation run is no ablation
        Assert.Contains("| teacher | teacher | pretrain-mae |", md);
        Assert.True(File.Exists(Path.Combine(outDir, "accuracy.png")));

        (code, output) = CliProcess.Attndistill("report", Path.Combine(root, "nowhere"), "--out", outDir);
        Assert.Equal(2, code);
        Assert.Contains("not found", output);
    }
}
