using System.Collections;
using AttnDistill.Checkpoints;
using AttnDistill.Models;
using TorchSharp.PyBridge;
using Xunit;
using static TorchSharp.torch;

namespace AttnDistill.Tests.Checkpoints;

/// <summary>
/// Each position-table rule against the upstream function itself (tests/fixtures/posembed, made by
/// make_posembed_fixtures.py from DINO's vision_transformer.py, timm's pos_embed.py and MAE's
/// pos_embed.py): the tables, and the features of a checkpoint loaded at another size.
/// </summary>
public class PosEmbedRuleParityTests
{
    const double Tolerance = 1e-5;
    static string Fixture(string name) => Path.Combine(AppContext.BaseDirectory, "fixtures", "posembed", name);

    static Dictionary<string, Tensor> Expected()
    {
        Hashtable h = PyTorchUnpickler.UnpickleStateDict(Fixture("posembed_expected.pth"));
        return h.Cast<DictionaryEntry>().ToDictionary(e => (string)e.Key, e => (Tensor)e.Value!);
    }

    static double MaxDiff(Tensor a, Tensor b) => (a - b).abs().max().item<float>();

    [Theory]
    [InlineData(PosEmbedRule.Dino, "dino", 32)]
    [InlineData(PosEmbedRule.Dino, "dino", 96)]
    [InlineData(PosEmbedRule.Timm, "timm", 32)]
    [InlineData(PosEmbedRule.Timm, "timm", 96)]
    [InlineData(PosEmbedRule.Mae, "mae", 32)]
    [InlineData(PosEmbedRule.Mae, "mae", 96)]
    public void EachRuleGivesItsUpstreamTableAndNotTheOthers(PosEmbedRule rule, string upstream, int size)
    {
        using var scope = NewDisposeScope();
        var expected = Expected();
        using var ckpt = CheckpointReader.Read(Fixture("posembed_vit.pth"));
        int grid = size / 8;
        var table = PosEmbedResampling.Resample(ckpt.Tensors["pos_embed"], grid, grid, rule);
        Assert.InRange(MaxDiff(table, expected[$"{upstream}_table_{size}"]), 0, Tolerance);
        // The rules are far apart on this table: matching one is not matching all.
        foreach (string other in new[] { "dino", "timm", "mae" }.Where(o => o != upstream))
            Assert.True(MaxDiff(table, expected[$"{other}_table_{size}"]) > 0.1, $"{rule} also matches {other}'s table");
    }

    [Theory]
    [InlineData(null, "dino", 32)]     // a plain .pth state dict is DINO's published format: DINO's rule
    [InlineData(null, "dino", 96)]
    [InlineData(PosEmbedRule.Timm, "timm", 32)]
    [InlineData(PosEmbedRule.Timm, "timm", 96)]
    [InlineData(PosEmbedRule.Mae, "mae", 32)]
    [InlineData(PosEmbedRule.Mae, "mae", 96)]
    public void ACheckpointLoadedAtAnotherSizeGivesTheUpstreamFeatures(PosEmbedRule? forced, string upstream, int size)
    {
        using var scope = NewDisposeScope();
        var expected = Expected();
        var notes = new List<string>();
        var options = new VitInferenceOptions { NumHeads = 4, Resampling = forced };
        var (model, cfg) = VitCheckpointLoader.Load(Fixture("posembed_vit.pth"), options, imageSize: size, info: notes.Add);
        using (model)
        {
            model.eval();
            Assert.Equal(size / 8, cfg.GridSize);
            using var noGrad = no_grad();
            var feature = model.forward(expected[$"x{size}"]);
            Assert.InRange(MaxDiff(feature, expected[$"{upstream}_{size}"]), 0, Tolerance);
        }
        string note = Assert.Single(notes, n => n.StartsWith("pos_embed:"));
        Assert.Contains($"grid 8 (65 tokens) -> grid {size / 8}", note);
        Assert.Contains(upstream switch { "dino" => "DINO's interpolate_pos_encoding", "timm" => "timm's resample_abs_pos_embed", _ => "MAE's interpolate_pos_embed" }, note);
        Assert.Contains(forced is null ? "a plain state dict" : "the rule asked for", note);
    }

    [Fact]
    public void TheModelsOwnOnTheFlyResamplingIsDinosForward()
    {
        // Built at the checkpoint's 64 px and fed 32 px images: DINO's forward does the same.
        using var scope = NewDisposeScope();
        var expected = Expected();
        var (model, _) = VitCheckpointLoader.Load(Fixture("posembed_vit.pth"), new VitInferenceOptions { NumHeads = 4 });
        using (model)
        {
            model.eval();
            using var noGrad = no_grad();
            Assert.InRange(MaxDiff(model.forward(expected["x32"]), expected["dino_32"]), 0, Tolerance);
        }
    }
}
