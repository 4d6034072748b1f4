using System.Collections;
using TorchSharp;
using TorchSharp.PyBridge;
using Xunit;
using static TorchSharp.torch;

namespace AttnDistill.Tests.Distillation;

/// <summary>The tensors written by tests/fixtures/distillation/make_loss_fixtures.py, read once.</summary>
public static class LossFixtures
{
    static readonly TestSupport.FixtureTable Table = new("distillation/loss_fixtures.pt");

    /// <summary>A fresh copy (callers may dispose it or make it a leaf).</summary>
    public static Tensor Get(string name) => Table.Get(name);

    /// <summary>|actual - expected| &lt;= rtol * |expected| + atol, element by element, with a readable failure.</summary>
    public static void AssertClose(Tensor expected, Tensor actual, string what, double rtol = 1e-5, double atol = 1e-10)
    {
        Assert.Equal(expected.shape, actual.shape);
        using var scope = NewDisposeScope();
        var e = expected.detach().to_type(ScalarType.Float64);
        var a = actual.detach().to_type(ScalarType.Float64);
        var excess = (a - e).abs() - (e.abs() * rtol + atol);
        double worst = excess.max().item<double>();
        double maxDiff = (a - e).abs().max().item<double>();
        Assert.True(worst <= 0, $"{what}: max |diff| {maxDiff:g4} exceeds rtol {rtol} (max |expected| {e.abs().max().item<double>():g4})");
    }
}
