using AttnDistill.Checkpoints;
using AttnDistill.Models;
using Xunit;
using static TorchSharp.torch;

namespace AttnDistill.Tests.Checkpoints;

public class StateDictLoaderTests
{
    [Fact]
    public void WrongDepthNamesTheMissingKeysAndWhatWouldFit()
    {
        using var c = CheckpointReader.Read(VitFixtures.Path("vit_b.safetensors"));
        using var m = new VisionTransformer(VitFixtures.Config("vit_b") with { Depth = 4 });
        var ex = Assert.Throws<CheckpointMismatchException>(() => StateDictLoader.Load(m, c.Tensors));
        Assert.Contains("blocks.3.attn.qkv.weight", ex.Missing);
        Assert.Contains("blocks.3.norm1.weight [24]", ex.Message);
        Assert.Contains("the checkpoint fits: width 24, depth 3, patch 8", ex.Message);
        Assert.Empty(ex.Unexpected);

        using var shallow = new VisionTransformer(VitFixtures.Config("vit_b") with { Depth = 2 });
        var ex2 = Assert.Throws<CheckpointMismatchException>(() => StateDictLoader.Load(shallow, c.Tensors));
        Assert.Equal(12, ex2.Unexpected.Count);
        Assert.Contains("blocks.2.mlp.fc2.bias", ex2.Message);
    }

    [Fact]
    public void WrongPatchNamesTheMismatchedShapesAndLeavesTheModelUntouched()
    {
        using var c = CheckpointReader.Read(VitFixtures.Path("vit_b.safetensors"));
        // Same grid (4) with patch 4 at 16: only the patch projection differs.
        using var m = new VisionTransformer(VitFixtures.Config("vit_b") with { PatchSize = 4, ImageSize = 16 });
        using var before = m.state_dict()["blocks.0.attn.qkv.weight"].clone();
        var ex = Assert.Throws<CheckpointMismatchException>(() => StateDictLoader.Load(m, c.Tensors));
        var mm = Assert.Single(ex.Mismatched);
        Assert.Equal("patch_embed.proj.weight", mm.Key);
        Assert.Contains("patch_embed.proj.weight checkpoint [24, 3, 8, 8] vs model [24, 3, 4, 4]", ex.Message);
        Assert.Contains("pos_embed has 17 tokens: patch 8 at 32 (grid 4)", ex.Message);
        Assert.True(before.equal(m.state_dict()["blocks.0.attn.qkv.weight"]).all().item<bool>());
    }

    [Fact]
    public void ABroadcastableShapeIsStillAMismatch()
    {
        using var c = CheckpointReader.Read(VitFixtures.Path("vit_a.pth"));
        var sd = new Dictionary<string, Tensor>(c.Tensors) { ["pos_embed"] = zeros(1, 1, 32) };
        using var m = new VisionTransformer(VitFixtures.Config("vit_a"));
        var ex = Assert.Throws<CheckpointMismatchException>(() => StateDictLoader.Load(m, sd));
        Assert.Equal("pos_embed", Assert.Single(ex.Mismatched).Key);
    }

    [Fact]
    public void PosEmbedOnAnotherGridIsResampledByDinosRuleByDefaultAndReported()
    {
        using var c = CheckpointReader.Read(VitFixtures.Path("vit_a.pth"));
        var cfg = VitFixtures.Config("vit_a") with { ImageSize = 24 };
        using var m = new VisionTransformer(cfg);
        var notes = new List<string>();
        var report = StateDictLoader.Load(m, c.Tensors, notes.Add);
        Assert.Contains("grid 4 (17 tokens) -> grid 6 (37 tokens) by DINO's interpolate_pos_encoding", Assert.Single(notes));
        Assert.Equal(notes, report.Notes);
        using var want = PosEmbedResampling.Resample(c.Tensors["pos_embed"], 6, 6, PosEmbedRule.Dino);
        Assert.Equal(new long[] { 1, 37, 32 }, want.shape);
        Assert.True(want.equal(m.PosEmbed).all().item<bool>());
        // CLS row kept as is.
        Assert.True(c.Tensors["pos_embed"][0, 0].equal(m.PosEmbed[0, 0]).all().item<bool>());
    }

    [Theory]
    [InlineData(PosEmbedRule.Dino)]
    [InlineData(PosEmbedRule.Timm)]
    [InlineData(PosEmbedRule.Mae)]
    public void ResamplingAConstantTableKeepsItConstant(PosEmbedRule rule)
    {
        using var pe = full(1, 1 + 16, 8, 0.5f);
        using var r = PosEmbedResampling.Resample(pe, 7, 7, rule);
        Assert.Equal(new long[] { 1, 50, 8 }, r.shape);
        Assert.InRange((r - 0.5f).abs().max().item<float>(), 0f, 1e-6f);
    }

    [Fact]
    public void SinCosTableIsRebuiltForAnotherGrid()
    {
        using var c = CheckpointReader.Read(VitFixtures.Path("vit_b.safetensors"));
        var cfg = VitFixtures.Config("vit_b") with { ImageSize = 48 };
        using var m = new VisionTransformer(cfg);
        var report = StateDictLoader.Load(m, c.Tensors);
        Assert.Contains("sin-cos", Assert.Single(report.Notes));
        using var table = SinCosPosEmbed.Table(24, 6);
        Assert.True(table.equal(m.PosEmbed).all().item<bool>());
    }
}
