using System.Globalization;
using System.Text.Json.Nodes;
using AttnDistill.Tests.TestSupport;
using AttnDistill.Workflows;
using AttnDistill.Runs;
using Xunit;

namespace AttnDistill.Tests.Workflows;

/// <summary>The quickstart's workflow, small (tiny models, 64 images, one epoch), and the report it writes.</summary>
public class QuickstartWorkflowTests
{
    static QuickstartConfig Tiny(string data, string outDir) => new()
    {
        DataRoot = data, Epochs = 1, BatchSize = 16, TeacherDim = 24, TeacherDepth = 1, StudentDim = 12, StudentDepth = 1,
        LinearEpochs = 2, LinearBaseLrs = new[] { 1.0 }, KnnK = 5, Workers = 0, ModelsDir = Path.Combine(outDir, "no-models"),
    };

    [Fact]
    public void ReportShowsEveryFigureOfTheSummaryWithThePixelFloor()
    {
        string data = SyntheticImageFolder.Write(trainPerClass: 16, testPerClass: 4, size: 32);
        string outDir = Directory.CreateTempSubdirectory("quickstart").FullName;
        var result = Quickstart.Run(Tiny(data, outDir), RunContext.Cpu(outDir));
        Assert.Null(result.Interrupted);
        Assert.Equal("MAE pre-trained here", result.TeacherSource);
        Assert.Equal(new[] { Quickstart.PixelFloorName, "MAE teacher (ViT 1x24, patch 4)", "student, features only (lambda 0)", "student, AttnDistill (lambda 0.1)" },
            result.Rows.Select(r => r.Name));
        Assert.Contains(result.Timings, t => t.Stage == "teacher pre-training (MAE)");

        string md = File.ReadAllText(result.ReportPath);
        Assert.DoesNotContain("?L/?H", md);
        Assert.Contains("1L/3H/p8, P2", md);
        foreach (var row in result.Rows)
        {
            Assert.Contains(row.KnnTop1.ToString("F2", CultureInfo.InvariantCulture), md);
            Assert.Contains(row.LinearTop1.ToString("F2", CultureInfo.InvariantCulture), md);
        }
        var floor = result.Rows[0];
        Assert.Contains($"k-NN top-1 {floor.KnnTop1.ToString("F2", CultureInfo.InvariantCulture)}, linear top-1 {floor.LinearTop1.ToString("F2", CultureInfo.InvariantCulture)}", md);
        // Every model's row carries the floor beside it; four runs, no stray evaluation rows.
        var tableRows = md.Split('\n').Where(l => l.StartsWith("| ") && !l.StartsWith("| run ") && !l.StartsWith("| ---")).TakeWhile(l => !l.Contains("Study on")).ToList();
        Assert.Contains(tableRows, l => l.Contains("| pixel floor |") && l.Contains("(this run)"));
        Assert.Equal(3, tableRows.Count(l => (l.Contains("| teacher |") || l.Contains("| student |")) && l.Contains(floor.KnnTop1.ToString("F2", CultureInfo.InvariantCulture) + " (Δ")));
        Assert.DoesNotContain(tableRows, l => l.Contains("| evaluation |"));

        var timings = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "metrics.json")))!["quickstart_timings"]!.AsObject();
        Assert.True(timings.ContainsKey("total"));
    }

    [Fact]
    public void AGivenTeacherIsUsedWithoutPreTraining()
    {
        string data = SyntheticImageFolder.Write(trainPerClass: 8, testPerClass: 2, size: 32);
        string first = Directory.CreateTempSubdirectory("quickstart-a").FullName;
        var trained = Quickstart.Run(Tiny(data, first), RunContext.Cpu(first));
        string teacher = trained.Rows[1].Checkpoint;
        string second = Directory.CreateTempSubdirectory("quickstart-b").FullName;
        var result = Quickstart.Run(Tiny(data, second) with { Teacher = teacher }, RunContext.Cpu(second));
        Assert.Equal("given (--teacher)", result.TeacherSource);
        Assert.DoesNotContain(result.Timings, t => t.Stage.StartsWith("teacher pre-training", StringComparison.Ordinal));
        Assert.False(Directory.Exists(Path.Combine(second, "teacher", "tensorboard")));
        string md = File.ReadAllText(result.ReportPath);
        Assert.Contains("| teacher |", md);
        Assert.Throws<FileNotFoundException>(() => Quickstart.Run(Tiny(data, second) with { Teacher = Path.Combine(second, "missing.safetensors") }, RunContext.Cpu(second)));
    }
}
