using AttnDistill.Training;
using Xunit;
using static TorchSharp.torch;

namespace AttnDistill.Tests.Training;

public class ScheduleTests
{
    [Theory]
    [InlineData(0.0, 0.0)]        // warm-up starts at 0
    [InlineData(20.0, 0.5)]       // half-way through warm-up
    [InlineData(40.0, 1.0)]       // peak at the end of warm-up
    [InlineData(270.0, 0.5)]      // cosine half-way between 40 and 500
    [InlineData(500.0, 0.0)]      // min lr at the last epoch
    public void WarmupThenHalfCosine(double epoch, double fractionOfPeak)
    {
        Assert.Equal(fractionOfPeak * 2.4e-3, LrSchedule.At(epoch, 2.4e-3, 0, 40, 500), 12);
    }

    [Fact]
    public void LinearScalingRule() => Assert.Equal(1.5e-4 * 16, LrSchedule.ScaledLr(1.5e-4, 4096), 12);

    [Fact]
    public void WeightDecayGroupsFollowTimm()
    {
        using var m = new AttnDistill.Models.VisionTransformer(new() { ImageSize = 16, PatchSize = 4, EmbedDim = 32, Depth = 1, NumHeads = 2 });
        var groups = ParameterGroups.WeightDecaySplit(m, 0.05);
        var decay = groups.Single(g => g.Name == "decay");
        var none = groups.Single(g => g.Name == "no_decay");
        Assert.Equal(0.05, decay.WeightDecay);
        Assert.Equal(0.0, none.WeightDecay);
        var decayNames = decay.Parameters.Select(p => p.Name).ToHashSet();
        Assert.Contains("blocks.0.attn.qkv.weight", decayNames);
        Assert.Contains("patch_embed.proj.weight", decayNames);
        Assert.Contains("cls_token", decayNames);                 // 3-D: decayed, as timm's add_weight_decay
        Assert.DoesNotContain("blocks.0.norm1.weight", decayNames);
        Assert.DoesNotContain("blocks.0.attn.qkv.bias", decayNames);
        Assert.Contains("norm.weight", none.Parameters.Select(p => p.Name));
    }

    [Theory]
    [InlineData(8, 1, 4096, 512)]
    [InlineData(64, 2, 4096, 32)]
    [InlineData(32, 1, 0, 1)]
    public void AccumulationReachesTheEffectiveBatch(int batch, int world, int effective, int accum)
    {
        Assert.Equal(accum, new TrainerOptions { BatchSize = batch, EffectiveBatch = effective }.AccumulationSteps(world));
    }

    [Fact]
    public void UnreachableEffectiveBatchIsRefusedWithTheFix()
    {
        var ex = Assert.Throws<ArgumentException>(() => new TrainerOptions { BatchSize = 48, EffectiveBatch = 4096 }.Validate());
        Assert.Contains("not a multiple of batch size 48", ex.Message);
        Assert.Contains("--blr (base lr) must be positive", Assert.Throws<ArgumentException>(() => new TrainerOptions { BaseLr = -1 }.Validate()).Message);
    }
}
