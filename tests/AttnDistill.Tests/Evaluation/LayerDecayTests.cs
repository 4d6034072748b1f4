using AttnDistill.Evaluation;
using Xunit;
using static TorchSharp.torch;

namespace AttnDistill.Tests.Evaluation;

public class LayerDecayTests
{
    [Theory]
    [InlineData("cls_token", 0)]
    [InlineData("pos_embed", 0)]
    [InlineData("patch_embed.proj.weight", 0)]
    [InlineData("blocks.0.attn.qkv.weight", 1)]
    [InlineData("blocks.11.mlp.fc2.bias", 12)]
    [InlineData("norm.weight", 13)]
    [InlineData("head.weight", 13)]
    [InlineData("backbone.blocks.3.norm1.weight", 4)]
    public void Layer_ids_follow_mae(string name, int id) => Assert.Equal(id, LayerDecay.LayerId(name, 12));

    [Fact]
    public void Groups_scale_lr_by_depth_and_skip_decay_on_1d_and_tokens()
    {
        using var scope = NewDisposeScope();
        using var vit = LinearProbeTests.TinyVit(); // depth 2
        var groups = LayerDecay.ParameterGroups(vit, depth: 2, weightDecay: 0.05, layerDecay: 0.5);
        var byName = groups.SelectMany(g => g.Parameters.Select(p => (p.Name, g))).ToDictionary(x => x.Name, x => x.g);
        Assert.Equal(vit.parameters().Count(p => p.requires_grad), byName.Count);
        Assert.Equal(0.125, byName["cls_token"].LrScale);
        Assert.Equal(0.0, byName["cls_token"].WeightDecay);
        Assert.Equal(0.0, byName["pos_embed"].WeightDecay);
        Assert.Equal(0.05, byName["patch_embed.proj.weight"].WeightDecay);
        Assert.Equal(0.25, byName["blocks.0.attn.qkv.weight"].LrScale);
        Assert.Equal(0.5, byName["blocks.1.mlp.fc1.weight"].LrScale);
        Assert.Equal(0.0, byName["blocks.1.mlp.fc1.bias"].WeightDecay);
        Assert.Equal(1.0, byName["norm.weight"].LrScale);
        Assert.Equal(0.0, byName["norm.weight"].WeightDecay);
        Assert.Throws<ArgumentException>(() => LayerDecay.ParameterGroups(vit, 2, 0.05, 0));
    }
}
