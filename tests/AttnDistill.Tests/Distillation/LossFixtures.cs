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
        => TestSupport.TensorAssert.Close(expected, actual, what, rtol, atol);
}
