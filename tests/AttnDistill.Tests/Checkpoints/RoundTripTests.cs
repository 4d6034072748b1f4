using AttnDistill.Checkpoints;
using AttnDistill.Models;
using Xunit;

namespace AttnDistill.Tests.Checkpoints;

/// <summary>A C# model saved as .pth / .safetensors and read back gives the PyTorch outputs again.</summary>
public class RoundTripTests
{
    [Theory]
    [InlineData("vit_a", "vit_a.pth", "student.pth")]
    [InlineData("vit_a", "vit_a.pth", "student.safetensors")]
    [InlineData("vit_b", "vit_b_mae.pth", "student.pth")]
    [InlineData("vit_b", "vit_b_mae.pth", "student.safetensors")]
    public void SavedStudentReloadsWithTheSameOutputs(string model, string fixture, string outName)
    {
        var cfg = VitFixtures.Config(model);
        // Kept in the test output so the Python side can check it:
        //   /usr/bin/python3 tests/fixtures/vit/make_vit_fixtures.py --check <bin>/roundtrip/vit_a_student.pth tests/fixtures/vit/vit_a_expected.pth
        string dir = Path.Combine(AppContext.BaseDirectory, "roundtrip");
        Directory.CreateDirectory(dir);
        string path = Path.Combine(dir, $"{model}_{outName}");
        using (var m = new VisionTransformer(cfg))
        using (var c = CheckpointReader.Read(VitFixtures.Path(fixture)))
        {
            StateDictLoader.Load(m, c.Tensors);
            BackboneExport.Save(m, path, cfg);
        }
        Assert.False(File.Exists(AtomicFile.TempPathFor(path)));

        using var back = CheckpointReader.Read(path);
        Assert.Null(back.WrapperKey);
        Assert.Empty(back.IgnoredKeys);
        // The safetensors export carries the config: nothing to infer (the heads are not in the width table).
        var rebuilt = outName.EndsWith(".safetensors") ? back.Config! : VitArchitectureInference.Infer(back.Tensors, new() { NumHeads = cfg.NumHeads });
        Assert.Equal(cfg, rebuilt);
        using var m2 = new VisionTransformer(rebuilt);
        StateDictLoader.Load(m2, back.Tensors);
        VitFixtures.AssertParity(m2, model);
    }
}

public class VitCheckpointLoaderTests
{
    [Fact]
    public void BuildsAndLoadsFromAFileAndMovesToAnotherImageSize()
    {
        var notes = new List<string>();
        var (m, cfg) = VitCheckpointLoader.Load(VitFixtures.Path("vit_a_dino.pth"), new VitInferenceOptions { NumHeads = 4 }, info: notes.Add);
        using (m)
        {
            Assert.Equal(VitFixtures.Config("vit_a"), cfg);
            VitFixtures.AssertParity(m, "vit_a");
        }
        Assert.Contains("teacher", notes[0]);

        var (big, bigCfg) = VitCheckpointLoader.Load(VitFixtures.Path("vit_a.pth"), new VitInferenceOptions { NumHeads = 4 }, imageSize: 32, info: notes.Add);
        using (big)
        {
            Assert.Equal(8, bigCfg.GridSize);
            Assert.Contains(notes, n => n.Contains("grid 4 (17 tokens) -> grid 8 (65 tokens) by DINO's interpolate_pos_encoding") && n.Contains("the rule of a plain state dict"));
        }
    }
}
