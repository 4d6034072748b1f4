using System.Collections;
using System.Text.Json;
using AttnDistill.Models;
using TorchSharp.PyBridge;
using Xunit;
using static TorchSharp.torch;

namespace AttnDistill.Tests.Checkpoints;

/// <summary>The committed PyTorch fixtures of tests/fixtures/vit (made by make_vit_fixtures.py).</summary>
static class VitFixtures
{
    public const double Tolerance = 1e-5;

    public static string Path(string name) => System.IO.Path.Combine(AppContext.BaseDirectory, "fixtures", "vit", name);

    /// <summary>The architecture the script used (vit_a.json / vit_b.json).</summary>
    public static VitConfig Config(string model)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path(model + ".json")));
        var r = doc.RootElement;
        return new VitConfig
        {
            ImageSize = r.GetProperty("img_size").GetInt32(),
            PatchSize = r.GetProperty("patch_size").GetInt32(),
            InChans = r.GetProperty("in_chans").GetInt32(),
            EmbedDim = r.GetProperty("embed_dim").GetInt32(),
            Depth = r.GetProperty("depth").GetInt32(),
            NumHeads = r.GetProperty("num_heads").GetInt32(),
            MlpRatio = r.GetProperty("mlp_ratio").GetDouble(),
            PosEmbed = r.GetProperty("pos_embed").GetString() == "sincos" ? PosEmbedKind.SinCos : PosEmbedKind.Learnable,
        }.Validate();
    }

    /// <summary>Inputs and outputs: input, feat, attn_last, attn_all (+ *_alt for vit_a).</summary>
    public static Dictionary<string, Tensor> Expected(string model)
    {
        Hashtable h = PyTorchUnpickler.UnpickleStateDict(Path(model + "_expected.pth"));
        return h.Cast<DictionaryEntry>().ToDictionary(e => (string)e.Key, e => (Tensor)e.Value!);
    }

    /// <summary>Normalized CLS feature (B, D) and every block's CLS attention rows (depth, B, h, 1 + N).</summary>
    public static (Tensor Feat, Tensor AttnAll) Run(VisionTransformer m, Tensor x)
    {
        m.eval();
        using var _ = no_grad();
        var feat = m.forward(x);
        var f = m.ForwardFeatures(x, AttentionRequest.AllBlocks);
        f.Hidden.Dispose();
        var attn = stack(f.Attention.Select(a => a.ClsAttention).ToArray());
        foreach (var a in f.Attention) a.ClsAttention.Dispose();
        return (feat, attn);
    }

    public static double MaxAbsDiff(Tensor a, Tensor b)
    {
        Assert.Equal(b.shape, a.shape);
        return (a.to(ScalarType.Float64) - b.to(ScalarType.Float64)).abs().max().item<double>();
    }

    /// <summary>Asserts the model reproduces the fixture outputs (and the alternate resolution when present).</summary>
    /// <returns>The largest absolute difference seen.</returns>
    public static double AssertParity(VisionTransformer m, string model)
    {
        using var scope = NewDisposeScope();
        var exp = Expected(model);
        double worst = 0;
        void Check(Tensor got, string key)
        {
            double d = MaxAbsDiff(got, exp[key]);
            Assert.True(d <= Tolerance, $"{model} {key}: max abs diff {d:e2} > {Tolerance:e0}");
            worst = Math.Max(worst, d);
        }
        var (feat, attn) = Run(m, exp["input"]);
        Check(feat, "feat");
        Check(attn, "attn_all");
        Check(attn[-1], "attn_last");
        if (exp.ContainsKey("input_alt"))
        {
            var (fa, aa) = Run(m, exp["input_alt"]);
            Check(fa, "feat_alt");
            Check(aa, "attn_all_alt");
            Check(aa[-1], "attn_last_alt");
        }
        return worst;
    }
}
