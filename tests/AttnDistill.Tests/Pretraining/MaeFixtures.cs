using System.Collections;
using AttnDistill.Models;
using AttnDistill.Pretraining;
using TorchSharp;
using TorchSharp.PyBridge;
using Xunit;
using static TorchSharp.torch;

namespace AttnDistill.Tests.Pretraining;

/// <summary>The tensors written by tests/fixtures/mae/make_mae_fixtures.py, read once.</summary>
public static class MaeFixtures
{
    /// <summary>The fixture model's shape (see the script's constants).</summary>
    public static MaeConfig Config => new()
    {
        Encoder = new VitConfig { ImageSize = 16, PatchSize = 4, EmbedDim = 32, Depth = 2, NumHeads = 4, PosEmbed = PosEmbedKind.SinCos },
        DecoderEmbedDim = 16,
        DecoderDepth = 1,
        DecoderNumHeads = 2,
        MaskRatio = 0.75,
        NormPixLoss = true,
    };

    static readonly TestSupport.FixtureTable Table = new("mae/mae_fixtures.pt");

    /// <summary>A fresh copy (callers may dispose it or make it a leaf).</summary>
    public static Tensor Get(string name) => Table.Get(name);

    /// <summary>The fixture weights under MAE's names ("w." prefix removed).</summary>
    public static Dictionary<string, Tensor> MaeNamedWeights() =>
        Table.Raw.Keys.Cast<string>().Where(k => k.StartsWith("w.", StringComparison.Ordinal))
            .ToDictionary(k => k[2..], Get);

    /// <summary>
    /// Strict name -> tensor copy: every key of the model is in the file and vice versa, shapes equal.
    /// The fixed sin-cos tables are compared instead of copied (they are part of the parity).
    /// </summary>
    public static MaskedAutoencoder LoadModel(MaeConfig? config = null)
    {
        var model = new MaskedAutoencoder(config ?? Config);
        var weights = MaeStateDict.FromMaeNames(MaeNamedWeights());
        var own = model.state_dict();
        Assert.Equal(own.Keys.Order(), weights.Keys.Order());
        using (no_grad())
            foreach (var (name, target) in own)
            {
                var source = weights[name];
                Assert.True(target.shape.SequenceEqual(source.shape), $"{name}: shape [{string.Join(",", target.shape)}] vs file [{string.Join(",", source.shape)}]");
                if (name.EndsWith("pos_embed", StringComparison.Ordinal))
                    AssertClose(source, target, name, rtol: 0, atol: 1e-6);
                else
                    target.copy_(source);
            }
        foreach (var t in weights.Values) t.Dispose();
        model.eval();
        return model;
    }

    /// <summary>|actual - expected| &lt;= rtol * |expected| + atol, element by element, with a readable failure.</summary>
    public static void AssertClose(Tensor expected, Tensor actual, string what, double rtol = 1e-5, double atol = 1e-5)
        => TestSupport.TensorAssert.Close(expected, actual, what, rtol, atol);

    /// <summary>Same shape and exactly the same values (dtype aside).</summary>
    public static void AssertEqual(Tensor expected, Tensor actual, string what)
    {
        Assert.True(expected.shape.SequenceEqual(actual.shape), $"{what}: shape [{string.Join(",", actual.shape)}], expected [{string.Join(",", expected.shape)}]");
        using var e = expected.to_type(ScalarType.Float64);
        using var a = actual.to_type(ScalarType.Float64);
        using var same = e.eq(a).all();
        Assert.True(same.item<bool>(), $"{what} differs from the fixture");
    }
}
