using AttnDistill.Distillation;
using AttnDistill.Tests.TestSupport;
using AttnDistill.Visualization;
using Xunit;
using static TorchSharp.torch;
using F = AttnDistill.Tests.Visualization.VisualizationFixtures;

namespace AttnDistill.Tests.Visualization;

/// <summary>The maps the pictures show are the loss's maps: distributions, and the loss's KL.</summary>
public class AttentionMapSetTests
{
    [Fact]
    public void MapsAreDistributionsOnEachModelsGrid()
    {
        using var teacher = F.Model(F.Teacher, 1);
        using var s8 = F.Model(F.StudentPatch8, 2);
        using var s4 = F.Model(F.StudentPatch4, 3);
        manual_seed(5);
        using var images = randn(3, 3, F.ImageSize, F.ImageSize);
        using var maps = AttentionMapSet.Compute(new NamedModel("t", teacher), new[] { new NamedModel("a", s8), new NamedModel("b", s4) }, images, new DistillLossOptions());

        Assert.Equal(3, maps.Count);
        Assert.Equal(new long[] { 3, 4, 17 }, maps.Teacher.Heads.shape);              // 4 heads, 1 + 4x4 tokens
        Assert.Equal(new long[] { 3, 17 }, maps.Teacher.Aggregated.shape);
        Assert.Equal(new long[] { 3, 2, 5 }, maps.Students[0].Heads.shape);           // 2 heads, 1 + 2x2
        Assert.Equal(new long[] { 3, 5 }, maps.Students[0].Aggregated.shape);
        Assert.Equal(new long[] { 3 }, maps.Students[0].KlToTeacher!.shape);
        Assert.Equal(2, maps.Students[0].Grid);
        foreach (var m in new[] { maps.Teacher }.Concat(maps.Students))
        {
            using var headSums = m.Heads.sum(-1);
            using var aggSums = m.Aggregated.sum(-1);
            TensorAssert.Close(ones_like(headSums), headSums, $"{m.Name} head rows", 0, 1e-5);
            TensorAssert.Close(ones_like(aggSums), aggSums, $"{m.Name} aggregated rows", 0, 1e-5);
            Assert.True(m.Aggregated.min().item<float>() >= 1e-5f * 0.99f, "aggregated maps are clamped as in the loss");
        }
        Assert.True(maps.Students.All(s => s.KlToTeacher!.min().item<float>() > 0), "a random student differs from the teacher");
    }

    [Fact]
    public void KlOfAMapToItselfIsZero()
    {
        using var teacher = F.Model(F.Teacher, 1);
        using var images = randn(2, 3, F.ImageSize, F.ImageSize);
        using var maps = AttentionMapSet.Compute(new NamedModel("t", teacher), new[] { new NamedModel("same", teacher) }, images, new DistillLossOptions());
        using var zero = zeros(2);
        TensorAssert.Close(zero, maps.Students[0].KlToTeacher!, "KL(teacher || teacher)", 0, 1e-6);
        TensorAssert.Close(maps.Teacher.Aggregated, maps.Students[0].Aggregated, "same model, same map", 0, 0);
    }

    [Fact]
    public void KlIsTheLossesUnweightedAttentionTermPerImage()
    {
        using var teacher = F.Model(F.Teacher, 1);
        using var student = F.Model(F.StudentPatch8, 2);
        using var images = randn(2, 3, F.ImageSize, F.ImageSize);
        var options = new DistillLossOptions { AttnTemperature = 5, Aggregation = AttentionAggregation.Mean };
        using var maps = AttentionMapSet.Compute(new NamedModel("t", teacher), new[] { new NamedModel("s", student) }, images, options);
        using var _ = no_grad();
        for (int b = 0; b < 2; b++)
        {
            using var one = images.narrow(0, b, 1);
            using var tRow = teacher.GetLastSelfAttention(one);
            using var sRow = student.GetLastSelfAttention(one);
            using var expected = AttentionDistillLoss.BlockLoss(options, sRow, tRow);
            Assert.Equal(expected.item<float>(), maps.Students[0].KlToTeacher![b].item<float>(), 1e-6f);
        }
    }

    [Fact]
    public void NoAggregationIsRefusedWithTheFix()
    {
        using var teacher = F.Model(F.Teacher, 1);
        using var images = randn(1, 3, F.ImageSize, F.ImageSize);
        var ex = Assert.Throws<ArgumentException>(() => AttentionMapSet.Compute(new NamedModel("t", teacher), new[] { new NamedModel("s", teacher) },
            images, new DistillLossOptions { Aggregation = AttentionAggregation.None }));
        Assert.Contains("product", ex.Message);
    }

    [Fact]
    public void HeatmapTilesScaleEachMapToItsOwnRange()
    {
        using var rows = tensor(new float[] { 0.5f, 0.1f, 0.1f, 0.1f, 0.2f, 0.1f, 0.3f, 0.3f, 0.3f, 0f }, new long[] { 2, 5 });
        using var grid = HeatmapOverlay.PatchGrid(rows);                               // CLS dropped: (2, 2, 2)
        Assert.Equal(new long[] { 2, 2, 2 }, grid.shape);
        using var unit = HeatmapOverlay.ScaleToUnit(grid);
        Assert.Equal(new[] { 0f, 0f, 0f, 1f, 1f, 1f, 1f, 0f }, unit.data<float>().ToArray());   // constant-ish map -> 0 .. 1 by its own range
        using var big = HeatmapOverlay.Upsample(unit, 8, HeatmapUpsampling.Nearest);
        Assert.Equal(new long[] { 2, 8, 8 }, big.shape);
        Assert.Equal(1f, big[0, 7, 7].item<float>());                                   // each patch becomes a 4x4 block
        Assert.Equal(0f, big[0, 0, 3].item<float>());
        using var lut = HeatmapColors.Lookup("Viridis");
        using var rgb = HeatmapOverlay.Colorize(big, lut);
        Assert.Equal(new long[] { 2, 3, 8, 8 }, rgb.shape);
        TensorAssert.Close(lut[255], rgb[0, .., 7, 7], "max -> last colour", 0, 0);
        TensorAssert.Close(lut[0], rgb[0, .., 0, 0], "min -> first colour", 0, 0);
        Assert.Throws<ArgumentException>(() => HeatmapColors.Lookup("no-such-map"));
    }
}
