using AttnDistill.Distillation;
using Xunit;

namespace AttnDistill.Tests.Distillation;

public class DistillLossOptionsTests
{
    [Fact]
    public void DefaultsAreThePapersBestSetting()
    {
        var o = new DistillLossOptions();
        Assert.Equal(1.0, o.WeightCls);
        Assert.Equal(0.1, o.WeightAttn);
        Assert.Equal(10.0, o.AttnTemperature);
        Assert.Equal(AttentionAggregation.Product, o.Aggregation);
        Assert.True(o.Interpolate);
        Assert.Equal(AttentionLossKind.KL, o.AttnLoss);
        Assert.False(o.AllBlocks || o.WeightByValue || o.PatchTokenAlign);
        Assert.Equal(1e-5, o.ClampMin);
        Assert.Equal(0.996, o.ClampMax);
        // The paper's pair: MAE ViT-S/16 teacher (6 heads, 384) -> ViT-T/16 student (3 heads, 192) with P.
        Assert.Same(o, o.Validate(3, 6, 14, 14, 192, 384, hasProjector: true));
    }

    public static TheoryData<DistillLossOptions, int, int, int, int, int, int, bool, string> Refused() => new()
    {
        { new() { Aggregation = AttentionAggregation.None }, 3, 6, 14, 14, 384, 384, true, "--aggregation product" },
        { new() { Interpolate = false }, 3, 6, 7, 14, 192, 384, true, "--interpolate" },
        { new(), 3, 6, 14, 14, 192, 384, false, "--proj-layers" },
        { new() { AttnTemperature = 0 }, 3, 6, 14, 14, 192, 384, true, "--attn-T" },
        { new() { AttnTemperature = double.NaN }, 3, 6, 14, 14, 192, 384, true, "--attn-T" },
        { new() { WeightAttn = -0.1 }, 3, 6, 14, 14, 192, 384, true, "--weight-attn" },
        { new() { WeightCls = -1 }, 3, 6, 14, 14, 192, 384, true, "--weight-cls" },
        { new() { WeightCls = 0, WeightAttn = 0 }, 3, 6, 14, 14, 192, 384, true, "both 0" },
        { new() { ClampMin = 0.5, ClampMax = 0.4 }, 3, 6, 14, 14, 192, 384, true, "clamp" },
        { new() { PatchTokenAlign = true }, 3, 6, 7, 14, 192, 384, true, "--patch-token-align" },
    };

    [Theory]
    [MemberData(nameof(Refused))]
    public void RefusesIncompatibleSettingsWithAOneLineFix(DistillLossOptions o, int sh, int th, int sg, int tg, int sd, int td, bool proj, string fix)
    {
        var e = Assert.Throws<ArgumentException>(() => o.Validate(sh, th, sg, tg, sd, td, proj));
        Assert.Contains(fix, e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void AllBlocksNeedsEqualDepthsWhenGiven()
    {
        var o = new DistillLossOptions { AllBlocks = true };
        var e = Assert.Throws<ArgumentException>(() => o.Validate(3, 6, 14, 14, 192, 384, true, studentDepth: 8, teacherDepth: 12));
        Assert.Contains("--attn-all-blocks", e.Message);
        Assert.Same(o, o.Validate(3, 6, 14, 14, 192, 384, true, 12, 12));
        // Without the depths there is nothing to compare: the options pass.
        Assert.Same(o, o.Validate(3, 6, 14, 14, 192, 384, true));
    }

    [Fact]
    public void LambdaZeroIgnoresAttentionOnlyMismatches()
    {
        // Feature-only distillation needs neither aggregation nor interpolation.
        var o = new DistillLossOptions { WeightAttn = 0, Aggregation = AttentionAggregation.None, Interpolate = false };
        Assert.False(o.UsesAttention);
        Assert.Same(o, o.Validate(3, 6, 7, 14, 192, 384, hasProjector: true));
        // The same mismatch with attention on is refused: the pass above is lambda 0's doing.
        Assert.Throws<ArgumentException>(() => (o with { WeightAttn = 0.1 }).Validate(3, 6, 7, 14, 192, 384, hasProjector: true));
    }
}
