using AttnDistill.Checkpoints;
using AttnDistill.Models;
using Xunit;
using Xunit.Abstractions;

namespace AttnDistill.Tests.Checkpoints;

/// <summary>The C# ViT loaded from every fixture format reproduces PyTorch within 1e-5.</summary>
public class ParityTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData("vit_a.pth", "vit_a", null)]
    [InlineData("vit_a_dino.pth", "vit_a", "teacher")]
    [InlineData("vit_a.safetensors", "vit_a", null)]
    [InlineData("vit_b_mae.pth", "vit_b", "model")]
    [InlineData("vit_b.safetensors", "vit_b", null)]
    public void LoadedModelMatchesPyTorch(string file, string model, string? wrapper)
    {
        var want = VitFixtures.Config(model);
        using var ckpt = CheckpointReader.Read(VitFixtures.Path(file));
        Assert.Equal(wrapper, ckpt.WrapperKey);

        // Architecture inference: everything but the heads (64 and 24 are not standard widths).
        var cfg = VitArchitectureInference.Infer(ckpt.Tensors, new VitInferenceOptions { NumHeads = want.NumHeads });
        Assert.Equal(want, cfg);

        using var m = new VisionTransformer(cfg);
        var report = StateDictLoader.Load(m, ckpt.Tensors);
        Assert.Equal(m.state_dict().Count, report.Loaded);
        Assert.Empty(report.Notes);
        output.WriteLine($"{file}: worst abs diff {VitFixtures.AssertParity(m, model):e2}");
    }
}
