using AttnDistill.Models;
using Xunit;
using static TorchSharp.torch;

namespace AttnDistill.Tests.Models;

public class WeightInitTests
{
    [Fact]
    public void TruncNormalHasTheRequestedSpreadAndBounds()
    {
        using var t = empty(100_000);
        WeightInit.TruncNormal_(t, std: 0.02);
        Assert.InRange(t.std().item<float>(), 0.0195, 0.0205);
        Assert.InRange(t.mean().item<float>(), -0.0005, 0.0005);
        using var bounded = empty(10_000);
        WeightInit.TruncNormal_(bounded, std: 1, a: -0.5, b: 0.5);
        Assert.True(bounded.abs().max().item<float>() <= 0.5f);
    }

    [Fact]
    public void VitInitFollowsTimm()
    {
        using var m = new VisionTransformer(new VitConfig { ImageSize = 16, PatchSize = 4, EmbedDim = 64, Depth = 2, NumHeads = 4 });
        var sd = m.state_dict();
        Assert.InRange(sd["blocks.0.attn.qkv.weight"].std().item<float>(), 0.018, 0.022);
        Assert.Equal(0f, sd["blocks.0.attn.qkv.bias"].abs().sum().item<float>());
        Assert.Equal(1f, sd["blocks.1.norm2.weight"].mean().item<float>());
        Assert.InRange(sd["pos_embed"].std().item<float>(), 0.015, 0.025);
    }

    [Fact]
    public void SameSeedSameWeights()
    {
        var cfg = new VitConfig { ImageSize = 16, PatchSize = 4, EmbedDim = 32, Depth = 1, NumHeads = 2 };
        TorchSharp.torch.manual_seed(7);
        using var a = new VisionTransformer(cfg);
        TorchSharp.torch.manual_seed(7);
        using var b = new VisionTransformer(cfg);
        foreach (var (k, v) in a.state_dict()) Assert.True(v.allclose(b.state_dict()[k], rtol: 0, atol: 0), k);
    }
}
