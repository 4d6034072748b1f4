using AttnDistill.Models;
using TorchSharp;
using Xunit;

namespace AttnDistill.Tests.Models;

public class VitPresetNameTests
{
    [Theory]
    [InlineData("vit_tiny_patch16_224", 192, 3, 12, 16)]
    [InlineData("vit_small_patch8_224", 384, 6, 12, 8)]
    [InlineData("vit_base_patch16_224", 768, 12, 12, 16)]
    [InlineData("vit_small_patch16_224.dino", 384, 6, 12, 16)]
    [InlineData("vit_base_patch16_224.mae", 768, 12, 12, 16)]
    [InlineData("deit_tiny_patch16_224", 192, 3, 12, 16)]
    [InlineData("deit_small_patch16_224", 384, 6, 12, 16)]
    [InlineData("vit_tiny", 192, 3, 12, 16)]
    [InlineData("vit_small", 384, 6, 12, 16)]
    [InlineData("vit_base", 768, 12, 12, 16)]
    [InlineData("vit_tiny_d8_patch32", 192, 3, 8, 32)]
    [InlineData("VIT_TINY_PATCH16", 192, 3, 12, 16)]
    public void Accepts_timm_deit_short_and_own_names(string name, int dim, int heads, int depth, int patch)
    {
        var c = VitPresets.Get(name);
        Assert.Equal((dim, heads, depth, patch), (c.EmbedDim, c.NumHeads, c.Depth, c.PatchSize));
    }

    [Fact]
    public void Unknown_names_suggest_the_nearest()
    {
        var ex = Assert.Throws<ArgumentException>(() => VitPresets.Get("vit_tiny_patch61"));
        Assert.Contains("vit_tiny_patch16", ex.Message);
        Assert.Contains("attndistill models", ex.Message);
        Assert.Equal(0, EditDistance.Levenshtein("abc", "abc"));
        Assert.Equal(3, EditDistance.Levenshtein("kitten", "sitting"));
    }

    [Theory]
    [InlineData("vit_tiny_patch16", 5_524_416)]    // timm's vit_tiny_patch16_224 (5,717,416) minus its 1000-class head (192*1000 + 1000)
    [InlineData("vit_small_patch16", 21_665_664)]  // DINO's ViT-S/16 backbone
    public void Parameter_count_matches_the_built_model(string name, long expected)
    {
        var cfg = VitPresets.Get(name);
        Assert.Equal(expected, VitPresets.ParameterCount(cfg));
        var tiny = cfg with { ImageSize = 32, PatchSize = 8, Depth = 2 };
        using var m = new VisionTransformer(tiny);
        Assert.Equal(m.parameters().Sum(p => p.numel()), VitPresets.ParameterCount(tiny));
    }
}
