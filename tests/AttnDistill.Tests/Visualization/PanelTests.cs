using AttnDistill.Distillation;
using AttnDistill.Visualization;
using SkiaSharp;
using Xunit;
using static TorchSharp.torch;
using F = AttnDistill.Tests.Visualization.VisualizationFixtures;

namespace AttnDistill.Tests.Visualization;

/// <summary>Panel geometry (one tile per head) and the drawn PNGs (right size, not blank).</summary>
public class PanelTests
{
    [Fact]
    public void LayoutHasOneTilePerHeadAndTheImageOnlyInTheTeacherRow()
    {
        var layout = PanelLayout.For(64, new[] { 6, 3, 2 });
        Assert.Equal(3, layout.Rows);
        Assert.Equal(8, layout.Columns);                                               // IMG, AGGR, 6 heads
        Assert.Equal(new[] { 6, 3, 2 }, Enumerable.Range(0, 3).Select(r => layout.Tiles.Count(t => t.Row == r && t.Kind == PanelTileKind.Head)));
        Assert.Equal(new[] { 0, 1, 2, 3, 4, 5 }, layout.Tiles.Where(t => t.Row == 0 && t.Kind == PanelTileKind.Head).Select(t => t.Head));
        Assert.Single(layout.Tiles, t => t.Kind == PanelTileKind.Image);
        Assert.Equal(3, layout.Tiles.Count(t => t.Kind == PanelTileKind.Aggregated));
        foreach (var t in layout.Tiles)
        {
            Assert.InRange(t.X, 0, layout.Width - t.Size);
            Assert.InRange(t.Y, 0, layout.Height - t.Size);
        }
        foreach (var a in layout.Tiles)
            foreach (var b in layout.Tiles.Where(b => b != a))
                Assert.False(a.X < b.X + b.Size && b.X < a.X + a.Size && a.Y < b.Y + b.Size && b.Y < a.Y + a.Size, $"tiles {a} and {b} overlap");
        Assert.True(layout.ColorBar.X > layout.Tiles.Max(t => t.X + t.Size));
        Assert.Equal(128, PanelLayout.DefaultTileSize(32));
        Assert.Equal(224, PanelLayout.DefaultTileSize(224));
    }

    [Fact]
    public void PanelIsDrawnAtTheLayoutsSizeWithHeatMaps()
    {
        using var teacher = F.Model(F.Teacher, 1);
        using var student = F.Model(F.StudentPatch8, 2);
        manual_seed(3);
        using var images = randn(2, 3, F.ImageSize, F.ImageSize);
        using var maps = AttentionMapSet.Compute(new NamedModel("teacher", teacher), new[] { new NamedModel("student", student) }, images, new DistillLossOptions());
        using var lookup = HeatmapColors.Lookup();
        using var display = rand(3, F.ImageSize, F.ImageSize);
        var options = new AttentionPanelOptions { TileSize = 64, Upsampling = HeatmapUpsampling.Nearest };
        using var bitmap = AttentionPanel.Render(maps, 1, display, "x.png", options, lookup);
        var layout = PanelLayout.For(64, new[] { 4, 2 });
        Assert.Equal(layout.Width, bitmap.Width);
        Assert.Equal(layout.Height, bitmap.Height);

        // Head tiles show different maps; the empty IMG slot of the student row stays white.
        var heads = layout.Tiles.Where(t => t.Row == 0 && t.Kind == PanelTileKind.Head).ToList();
        Assert.NotEqual(TileColours(bitmap, heads[0]), TileColours(bitmap, heads[1]));
        var studentAggr = layout.Tiles.Single(t => t.Row == 1 && t.Kind == PanelTileKind.Aggregated);
        Assert.Equal(SKColors.White, bitmap.GetPixel(studentAggr.X - studentAggr.Size / 2 - layout.Gap, studentAggr.Y + studentAggr.Size / 2));

        string path = Path.Combine(Directory.CreateTempSubdirectory("panel").FullName, "p.png");
        RgbPicture.SavePng(bitmap, path);
        using var decoded = F.AssertPicture(path, layout.Width, layout.Height);
    }

    static string TileColours(SKBitmap bitmap, PanelTile t) =>
        string.Join(",", Enumerable.Range(0, 8).Select(i => bitmap.GetPixel(t.X + i * t.Size / 8 + 1, t.Y + i * t.Size / 8 + 1)));
}
