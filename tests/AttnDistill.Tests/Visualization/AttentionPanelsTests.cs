using AttnDistill.Tests.Data;
using AttnDistill.Tests.TestSupport;
using AttnDistill.Visualization;
using Xunit;
using F = AttnDistill.Tests.Visualization.VisualizationFixtures;

namespace AttnDistill.Tests.Visualization;

/// <summary>From checkpoint files and image files to PNG panels, .npy maps and the index pages; and the CLI verb.</summary>
public class AttentionPanelsTests
{
    [Fact]
    public void WritesPanelsRawMapsAndIndexForAFolder()
    {
        var (teacher, students) = F.Checkpoints();
        string images = Path.Combine(Directory.CreateTempSubdirectory("viz-images").FullName, "imgs");
        DataTestUtil.WriteImage(Path.Combine(images, "cat", "a.png"), 24, 20, 1);
        DataTestUtil.WriteImage(Path.Combine(images, "dog", "b.jpg"), 16, 16, 2, SkiaSharp.SKEncodedImageFormat.Jpeg);
        string broken = Path.Combine(images, "dog", "c.png");
        File.WriteAllText(broken, "not an image");
        string outDir = Directory.CreateTempSubdirectory("viz-out").FullName;
        var logged = new List<string>();

        var results = AttentionPanels.Render(teacher, students, AttentionPanels.FromFiles(new[] { images }), AttnDistill.Runs.RunContext.Cpu(outDir, logged.Add),
            new AttentionPanelOptions { Format = AttentionOutputFormat.Both, TileSize = 48, BatchSize = 1 });

        Assert.Equal(2, results.Count);                                                 // the broken file is skipped and reported
        Assert.Contains(logged, l => l.Contains("c.png"));
        Assert.Equal(new[] { "cat", "dog" }, results.Select(r => r.Group));
        var layout = PanelLayout.For(48, new[] { 4, 2, 3 });
        foreach (var r in results)
        {
            using var png = F.AssertPicture(r.PngPath!, layout.Width, layout.Height);
            Assert.Equal(2, r.KlToTeacher.Count);
            Assert.All(r.KlToTeacher, kl => Assert.True(kl > 0 && double.IsFinite(kl)));
            Assert.Equal(6, r.NpyPaths.Count);                                          // heads + aggregated, 3 models
            var (heads, headShape) = NpyFile.Read(r.NpyPaths.Single(p => p.EndsWith("_teacher_heads.npy")));
            Assert.Equal(new long[] { 4, 17 }, headShape);
            for (int h = 0; h < 4; h++) Assert.Equal(1.0, heads.Skip(17 * h).Take(17).Sum(), 4);
            var (aggr, aggrShape) = NpyFile.Read(r.NpyPaths.Single(p => p.Contains("_student1-") && p.EndsWith("_aggr.npy")));
            Assert.Equal(new long[] { 5 }, aggrShape);                                  // the patch-8 student: 1 + 2x2
            Assert.Equal(1.0, aggr.Sum(), 4);
        }
        string html = File.ReadAllText(Path.Combine(outDir, "index.html"));
        Assert.Contains("<h2>cat</h2>", html);
        Assert.Contains(Path.GetFileName(results[1].PngPath!), html);
        string md = File.ReadAllText(Path.Combine(outDir, "index.md"));
        Assert.Contains("| student p8 |", md);
        Assert.Equal(1 + 2 * 2, File.ReadAllLines(Path.Combine(outDir, "kl.csv")).Length);
    }

    [Fact]
    public void PerClassTakesTheFirstKOfEveryClass()
    {
        string root = SyntheticImageFolder.Write(2, 3, classes: 4);
        var picked = AttentionPanels.PerClass(root, 2);
        Assert.Equal(8, picked.Count);
        Assert.Equal(new[] { "class0", "class1", "class2", "class3" }, picked.Select(p => p.Group).Distinct());
        Assert.All(picked.GroupBy(p => p.Group), g => Assert.Equal(2, g.Count()));
        Assert.Equal(16, picked[0].Load().Width);
        // A bare class-folder root (no train/ or test/) works too.
        Assert.Equal(8, AttentionPanels.PerClass(Path.Combine(root, "train"), 5).Count);
    }

    [Fact]
    public void VisualizeVerbDrawsAGalleryPerClass()
    {
        var (teacher, students) = F.Checkpoints();
        string data = SyntheticImageFolder.Write(1, 2, classes: 2);
        string outDir = Directory.CreateTempSubdirectory("viz-cli").FullName;
        var (code, output) = CliProcess.Attndistill("visualize", "--teacher", teacher.Path,
            "--student", $"p8={students[0].Path}", $"p4={students[1].Path}",
            "--images", data, "--per-class", "2", "--upsample", "nearest", "--colormap", "Viridis", "--out", outDir);
        Assert.True(code == 0, output);
        var pngs = Directory.GetFiles(outDir, "*.png");
        Assert.Equal(4, pngs.Length);
        using var first = F.AssertPicture(pngs.Order().First(), PanelLayout.For(128, new[] { 4, 2, 3 }).Width);
        Assert.True(File.Exists(Path.Combine(outDir, "index.html")));
        Assert.Contains("mean KL p8", output);

        (code, output) = CliProcess.Attndistill("visualize", "--teacher", teacher.Path, "--student", students[0].Path,
            "--images", data, "--aggregation", "none", "--out", outDir);
        Assert.Equal(2, code);
        Assert.Contains("aggregation", output);
        Assert.DoesNotContain("   at ", output);
    }
}
