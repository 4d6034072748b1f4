using AttnDistill.Pretraining.Dino;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace AttnDistill.Tests.Pretraining.Dino;

/// <summary>DINO's head, loss, schedules and EMA against their definitions (hand-computed references; the PyTorch fixture is still to come).</summary>
public class DinoCoreTests
{
    [Fact]
    public void HeadHasDinoKeysAndFrozenUnitNorm()
    {
        manual_seed(0);
        using var head = new DinoHead(16, new DinoHeadConfig { OutDim = 32, HiddenDim = 24, BottleneckDim = 8 });
        var keys = head.state_dict().Keys.Order(StringComparer.Ordinal).ToArray();
        Assert.Equal(new[] { "last_layer.weight_g", "last_layer.weight_v", "mlp.0.bias", "mlp.0.weight", "mlp.2.bias", "mlp.2.weight", "mlp.4.bias", "mlp.4.weight" }, keys);
        Assert.False(head.LastLayer.WeightG.requires_grad);
        Assert.Equal(new long[] { 32, 1 }, head.LastLayer.WeightG.shape);
        using var x = randn(5, 16);
        using var y = head.forward(x);
        Assert.Equal(new long[] { 5, 32 }, y.shape);
        // Each output is the cosine between the normalized bottleneck and a unit-norm row: |y| <= 1.
        Assert.True(y.abs().max().item<float>() <= 1.0001f);
    }

    [Fact]
    public void CosineScheduleMatchesUtilsCosineScheduler()
    {
        var s = DinoSchedules.Cosine(1.0, 0.1, epochs: 3, iterationsPerEpoch: 4, warmupEpochs: 1);
        Assert.Equal(12, s.Length);
        Assert.Equal(new[] { 0.0, 1.0 / 3, 2.0 / 3, 1.0 }, s[..4]);       // np.linspace(0, 1, 4)
        Assert.Equal(1.0, s[4]);                                            // cosine starts at the base value
        Assert.Equal(0.1 + 0.45 * (1 + Math.Cos(Math.PI * 7 / 8)), s[11]); // and never reaches the final value
        var t = DinoSchedules.TeacherTemperature(0.04, 0.07, 3, 5);
        Assert.Equal(new[] { 0.04, 0.04 + 1 * ((0.07 - 0.04) / 2), 0.07, 0.07, 0.07 }, t);   // numpy: start + i x step
    }

    [Fact]
    public void LossIsTheMeanCrossEntropyOverCropPairs()
    {
        manual_seed(1);
        using var loss = new DinoLoss(outDim: 6, nCrops: 3, 0.04, 0.07, 2, 4);
        using var s = randn(3 * 2, 6);
        using var t = randn(2 * 2, 6);
        using var l = loss.Compute(s, t, epoch: 0);
        var sc = (s / 0.1).chunk(3);
        var q = (t / 0.04).softmax(-1).chunk(2);
        double expected = 0;
        foreach (var (iq, v) in new[] { (0, 1), (0, 2), (1, 0), (1, 2) })
            expected += (-q[iq] * sc[v].log_softmax(-1)).sum(-1).mean().item<float>();
        Assert.Equal(expected / 4, l.item<float>(), 5);
        loss.UpdateCenter(t);
        using var c = t.mean(new long[] { 0 }, keepdim: true) * 0.1;
        Assert.True(loss.Center.allclose(c, rtol: 0, atol: 1e-7));
    }

    [Fact]
    public void EmaIsParamKTimesMPlusOneMinusMParamQ()
    {
        manual_seed(2);
        using var a = nn.Linear(4, 3);
        using var b = nn.Linear(4, 3);
        using var expected = (b.weight! * 0.996f).add(a.weight!.detach() * (1 - 0.996));
        TeacherEma.Update(a, b, 0.996);
        Assert.True(b.weight!.eq(expected).all().item<bool>());
    }

    [Fact]
    public void PerParameterClipAndLastLayerCancel()
    {
        using var head = new DinoHead(4, new DinoHeadConfig { OutDim = 5, HiddenDim = 6, BottleneckDim = 3 });
        using var x = randn(2, 4);
        head.forward(x).pow(2).sum().backward();
        TeacherEma.ClipPerParameter(head.parameters(), 1e-3);
        foreach (var p in head.parameters())
            if (p.grad is { } g) Assert.True(g.norm().item<float>() <= 1.01e-3);
        TeacherEma.CancelLastLayer(head, epoch: 0, freezeLastLayer: 1);
        Assert.Null(head.LastLayer.WeightV.grad);
    }
}
