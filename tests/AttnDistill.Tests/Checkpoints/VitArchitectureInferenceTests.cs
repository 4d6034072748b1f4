using AttnDistill.Checkpoints;
using AttnDistill.Models;
using Xunit;
using static TorchSharp.torch;

namespace AttnDistill.Tests.Checkpoints;

public class VitArchitectureInferenceTests
{
    static Dictionary<string, Tensor> Fake(VitConfig cfg)
        => VitStateDictKeys.ExpectedShapes(cfg).ToDictionary(e => e.Name, e => e.Name == "pos_embed" && cfg.PosEmbed == PosEmbedKind.SinCos
            ? SinCosPosEmbed.Table(cfg.EmbedDim, cfg.GridSize) : zeros(e.Shape));

    [Fact]
    public void FixturesAreRecognisedIncludingSinCos()
    {
        using var a = CheckpointReader.Read(VitFixtures.Path("vit_a.pth"));
        using var b = CheckpointReader.Read(VitFixtures.Path("vit_b.safetensors"));
        var ca = VitArchitectureInference.Infer(a.Tensors, new VitInferenceOptions { NumHeads = 4 });
        var cb = VitArchitectureInference.Infer(b.Tensors, new VitInferenceOptions { NumHeads = 3 });
        Assert.Equal(VitFixtures.Config("vit_a"), ca);
        Assert.Equal(VitFixtures.Config("vit_b"), cb);
        Assert.Equal(PosEmbedKind.Learnable, ca.PosEmbed);
        Assert.Equal(PosEmbedKind.SinCos, cb.PosEmbed);
        Assert.Equal(2.0, ca.MlpRatio);
        // The flag wins over recognition by value.
        Assert.Equal(PosEmbedKind.Learnable, VitArchitectureInference.Infer(b.Tensors, new() { NumHeads = 3, PosEmbed = PosEmbedKind.Learnable }).PosEmbed);
    }

    [Theory]
    [InlineData(192, 3)]
    [InlineData(384, 6)]
    [InlineData(768, 12)]
    [InlineData(1024, 16)]
    public void HeadsComeFromTheWidthTable(int width, int heads)
    {
        var cfg = new VitConfig { ImageSize = 32, PatchSize = 16, EmbedDim = width, Depth = 1, NumHeads = heads, PosEmbed = PosEmbedKind.SinCos };
        using var scope = NewDisposeScope();
        Assert.Equal(cfg, VitArchitectureInference.Infer(Fake(cfg)));
    }

    [Fact]
    public void NonStandardWidthNeedsHeadsOrAPreset()
    {
        using var a = CheckpointReader.Read(VitFixtures.Path("vit_a.pth"));
        var ex = Assert.Throws<ArgumentException>(() => VitArchitectureInference.Infer(a.Tensors));
        Assert.Contains("width 32", ex.Message);
        Assert.Contains("--heads", ex.Message);

        var preset = VitFixtures.Config("vit_a") with { NumHeads = 8, DropPathRate = 0.1 };
        var cfg = VitArchitectureInference.Infer(a.Tensors, new() { Preset = preset });
        Assert.Equal(8, cfg.NumHeads);
        Assert.Equal(0.1, cfg.DropPathRate);

        var wrong = Assert.Throws<ArgumentException>(() => VitArchitectureInference.Infer(a.Tensors, new() { Preset = preset with { Depth = 12, PatchSize = 16 } }));
        Assert.Contains("depth 2 (preset 12)", wrong.Message);
        Assert.Contains("patch 4 (preset 16)", wrong.Message);
    }

    [Fact]
    public void DescribeSaysWhichPatchAndImageSizeFit()
    {
        using var scope = NewDisposeScope();
        var cfg = VitPresets.Get("vit_small_patch8");
        var shapes = VitStateDictKeys.ExpectedShapes(cfg).ToDictionary(e => e.Name, e => e.Shape);
        string d = VitArchitectureInference.Describe(shapes);
        Assert.Contains("pos_embed has 785 tokens: patch 8 at 224 (grid 28)", d);
        Assert.Contains("width 384, depth 12, patch 8", d);
        Assert.Equal("no ViT backbone tensors", VitArchitectureInference.Describe(new Dictionary<string, long[]>()));
    }

    [Fact]
    public void NonSquareTokenCountIsExplained()
    {
        using var scope = NewDisposeScope();
        var cfg = new VitConfig { ImageSize = 32, PatchSize = 16, EmbedDim = 192, Depth = 1, NumHeads = 3 };
        var sd = Fake(cfg);
        sd["pos_embed"] = zeros(1, 6, 192); // CLS + distillation token + 2x2
        var ex = Assert.Throws<ArgumentException>(() => VitArchitectureInference.Infer(sd));
        Assert.Contains("6 tokens", ex.Message);
    }
}
