using AttnDistill.Models;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace AttnDistill.Tests.Models;

public class VisionTransformerTests
{
    static VitConfig TinyTest(PosEmbedKind pe = PosEmbedKind.Learnable) =>
        new() { ImageSize = 16, PatchSize = 4, EmbedDim = 32, Depth = 2, NumHeads = 4, PosEmbed = pe };

    [Theory]
    [InlineData("vit_tiny_patch16", 5_524_416)]
    [InlineData("vit_small_patch16", 21_665_664)]
    public void BackboneParameterCountsEqualTimm(string preset, long expected)
    {
        using var m = new VisionTransformer(VitPresets.Get(preset));
        Assert.Equal(expected, m.parameters().Sum(p => p.numel()));
    }

    /// <summary>Every student-sized preset (tiny and small, learnable and sin-cos), as timm's test_models loops over its registry.</summary>
    public static IEnumerable<object[]> StudentPresets() =>
        VitPresets.Names.Where(n => !n.Contains("large") && !n.Contains("base")).Order().Select(n => new object[] { n });

    [Theory]
    [MemberData(nameof(StudentPresets))]
    public void EveryStudentPresetRunsForwardAndBackwardAtATwoByTwoGrid(string name)
    {
        var cfg = VitPresets.Get(name) with { ImageSize = VitPresets.Get(name).PatchSize * 2 };
        using var m = new VisionTransformer(cfg);
        using var x = randn(2, 3, cfg.ImageSize, cfg.ImageSize, generator: new Generator(0));
        using var y = m.forward(x);
        Assert.Equal(new long[] { 2, cfg.EmbedDim }, y.shape);
        Assert.True(y.isfinite().all().item<bool>(), $"{name}: non-finite output");
        // Squares of the output, so no parameter's gradient cancels by symmetry (a plain sum would, through the final LayerNorm).
        using var loss = y.pow(2).sum();
        loss.backward();
        foreach (var (param, p) in m.named_parameters())
        {
            if (!p.requires_grad) continue;   // the sin-cos table
            Assert.True(p.grad is not null && p.grad.isfinite().all().item<bool>() && p.grad.abs().sum().item<float>() > 0,
                $"{name}: {param} got no (finite) gradient");
        }
        Assert.Equal(cfg.PosEmbed == PosEmbedKind.SinCos, !m.PosEmbed.requires_grad);
    }

    [Fact]
    public void TeacherPresetsHaveWidthsTheirHeadsDivide()
    {
        // Base and large are teachers: too large to build once per preset in the suite; their head split is what can go wrong.
        var teachers = VitPresets.Names.Where(n => n.Contains("large") || n.Contains("base")).ToArray();
        Assert.Equal(16, teachers.Length);
        foreach (var name in teachers)
            Assert.Equal(0, VitPresets.Get(name).EmbedDim % VitPresets.Get(name).NumHeads);
    }

    [Fact]
    public void StateDictKeysAndShapesMatchGoldenList()
    {
        using var m = new VisionTransformer(TinyTest() with { Depth = 1 });
        var actual = m.state_dict().Select(kv => $"{kv.Key} [{string.Join(",", kv.Value.shape)}]").ToArray();
        var expected = new[]
        {
            "patch_embed.proj.weight [32,3,4,4]", "patch_embed.proj.bias [32]",
            "cls_token [1,1,32]", "pos_embed [1,17,32]",
            "blocks.0.norm1.weight [32]", "blocks.0.norm1.bias [32]",
            "blocks.0.attn.qkv.weight [96,32]", "blocks.0.attn.qkv.bias [96]",
            "blocks.0.attn.proj.weight [32,32]", "blocks.0.attn.proj.bias [32]",
            "blocks.0.norm2.weight [32]", "blocks.0.norm2.bias [32]",
            "blocks.0.mlp.fc1.weight [128,32]", "blocks.0.mlp.fc1.bias [128]",
            "blocks.0.mlp.fc2.weight [32,128]", "blocks.0.mlp.fc2.bias [32]",
            "norm.weight [32]", "norm.bias [32]",
        };
        Assert.Equal(expected.Order(), actual.Order());
    }

    [Fact]
    public void FusedAndExplicitAttentionAgree()
    {
        torch.manual_seed(1);
        using var m = new VisionTransformer(TinyTest());
        m.eval();
        using var x = randn(3, 3, 16, 16);
        m.UseFusedAttention = true;
        var fused = m.ForwardFeatures(x, AttentionRequest.AllBlocks, valueNorms: true);
        m.UseFusedAttention = false;
        var expl = m.ForwardFeatures(x, AttentionRequest.AllBlocks, valueNorms: true);
        Assert.True(fused.Hidden.allclose(expl.Hidden, rtol: 1e-5, atol: 1e-5));
        Assert.Equal(2, fused.Attention.Count);
        for (int i = 0; i < 2; i++)
        {
            Assert.Equal(new long[] { 3, 4, 17 }, fused.Attention[i].ClsAttention.shape);
            Assert.True(fused.Attention[i].ClsAttention.allclose(expl.Attention[i].ClsAttention, rtol: 1e-5, atol: 1e-6));
            Assert.True(fused.Attention[i].ValueNorms!.allclose(expl.Attention[i].ValueNorms!));
            // Each head's row is a distribution over 1 + N tokens.
            Assert.True(fused.Attention[i].ClsAttention.sum(-1).allclose(ones(3, 4), atol: 1e-5));
        }
    }

    [Fact]
    public void GradientsReachEveryTrainableParameterThroughTheAttentionRow()
    {
        using var m = new VisionTransformer(TinyTest());
        using var x = randn(2, 3, 16, 16);
        var f = m.ForwardFeatures(x, AttentionRequest.LastBlock);
        using var loss = m.Norm.forward(f.Hidden).select(1, 0).pow(2).sum() + f.Attention[0].ClsAttention.log().sum();
        loss.backward();
        foreach (var (name, p) in m.named_parameters())
            Assert.True(p.grad is not null && p.grad.abs().sum().item<float>() > 0, $"{name} got no gradient: {(p.grad is null ? "null" : p.grad.abs().sum().item<float>().ToString())}, requires_grad {p.requires_grad}");
    }

    [Fact]
    public void SinCosTableIsFixedAndMatchesMaeLayout()
    {
        using var m = new VisionTransformer(TinyTest(PosEmbedKind.SinCos));
        Assert.False(m.PosEmbed.requires_grad);
        using var t = m.PosEmbed.squeeze(0);
        Assert.Equal(0f, t[0].abs().sum().item<float>());           // CLS row is zero
        // Patch (row 0, col 1): first half encodes x = 1: sin(1 * omega_0) = sin(1).
        Assert.Equal(Math.Sin(1.0), t[2, 0].item<float>(), 5);
        // Second half encodes y = 0: sin(0) = 0, cos(0) = 1.
        Assert.Equal(0.0, t[2, 16].item<float>(), 6);
        Assert.Equal(1.0, t[2, 24].item<float>(), 6);
    }

    [Fact]
    public void OtherResolutionsResamplePositionEmbedding()
    {
        using var m = new VisionTransformer(TinyTest());
        m.eval();
        using var _ = no_grad();
        using var y = m.forward(randn(2, 3, 24, 24));
        Assert.Equal(new long[] { 2, 32 }, y.shape);
        using var a = m.GetLastSelfAttention(randn(1, 3, 24, 32));
        Assert.Equal(new long[] { 1, 4, 1 + 6 * 8 }, a.shape);
    }

    [Theory]
    [InlineData(30, 4, "does not divide image size 30")]
    [InlineData(32, 4, null)]
    public void ConfigValidationNamesTheProblem(int image, int patch, string? message)
    {
        var cfg = TinyTest() with { ImageSize = image, PatchSize = patch };
        if (message is null) cfg.Validate();
        else Assert.Contains(message, Assert.Throws<ArgumentException>(() => cfg.Validate()).Message);
        Assert.Contains("do not divide the width", Assert.Throws<ArgumentException>(() => (TinyTest() with { NumHeads = 5 }).Validate()).Message);
    }
}
