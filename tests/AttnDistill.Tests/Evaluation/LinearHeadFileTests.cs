using System.Collections;
using AttnDistill.Evaluation;
using TorchSharp.PyBridge;
using Xunit;
using static TorchSharp.torch;

namespace AttnDistill.Tests.Evaluation;

/// <summary>
/// The probe head holds MAE's layout once: nn.Sequential(BatchNorm1d(affine=False, eps 1e-6), Linear)
/// as main_linprobe.py builds it, so its state dict is that of MAE's `head` (keys 0.* and 1.*) and
/// nothing else. The reference is tests/fixtures/eval/mae_linear_head.pth, written by
/// make_linear_head_fixture.py from that very construction.
/// </summary>
public class LinearHeadFileTests
{
    const string LogitsKey = "expected_logits";

    /// <summary>MAE's head state dict (without the fixture's expected logits).</summary>
    static Dictionary<string, Tensor> MaeHead() => Fixture().Where(e => e.Key != LogitsKey).ToDictionary(e => e.Key, e => e.Value);

    static Dictionary<string, Tensor> Fixture()
    {
        Hashtable h = PyTorchUnpickler.UnpickleStateDict(Path.Combine(AppContext.BaseDirectory, "fixtures", "eval", "mae_linear_head.pth"));
        return h.Cast<DictionaryEntry>().ToDictionary(e => (string)e.Key, e => (Tensor)e.Value!);
    }

    [Fact]
    public void AHeadInASweepHasExactlyMaesKeysShapesAndDtypes()
    {
        var mae = MaeHead();
        using var sweep = new LinearProbeSweep(8, 3, new[] { 0.1, 1.0 });
        var ours = sweep.Heads[1].state_dict();
        Assert.Equal(mae.Keys.OrderBy(k => k, StringComparer.Ordinal), ours.Keys.OrderBy(k => k, StringComparer.Ordinal));
        foreach (var (key, t) in mae)
        {
            Assert.Equal(t.shape, ours[key].shape);
            Assert.Equal(t.dtype, ours[key].dtype);
        }
    }

    [Fact]
    public void MaesHeadLoadsIntoOursStrictlyAndGivesItsLogits()
    {
        var mae = MaeHead();
        using var head = new LinearProbeHead(8, 3);
        var target = head.state_dict();
        using (no_grad())
            foreach (var (key, t) in mae) target[key].copy_(t);
        head.eval();
        using var features = arange(16, dtype: float32).reshape(2, 8).div(7);
        using var logits = head.forward(features);
        using var expected = Fixture()[LogitsKey];
        Assert.True(allclose(logits, expected, rtol: 0, atol: 1e-5), $"max difference {(logits - expected).abs().max().item<float>()}");
    }
}
