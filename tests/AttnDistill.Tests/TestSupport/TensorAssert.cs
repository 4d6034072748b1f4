using Xunit;
using static TorchSharp.torch;

namespace AttnDistill.Tests.TestSupport;

/// <summary>Element-wise tensor comparisons with readable failures (in float64).</summary>
public static class TensorAssert
{
    /// <summary>|actual - expected| &lt;= rtol * |expected| + atol, element by element.</summary>
    public static void Close(Tensor expected, Tensor actual, string what, double rtol, double atol)
    {
        Assert.Equal(expected.shape, actual.shape);
        using var scope = NewDisposeScope();
        var e = expected.detach().to_type(ScalarType.Float64);
        var a = actual.detach().to_type(ScalarType.Float64);
        var excess = (a - e).abs() - (e.abs() * rtol + atol);
        double worst = excess.max().item<double>();
        double maxDiff = (a - e).abs().max().item<double>();
        Assert.True(worst <= 0, $"{what}: max |diff| {maxDiff:g4} exceeds rtol {rtol} atol {atol} (max |expected| {e.abs().max().item<double>():g4})");
    }
}
