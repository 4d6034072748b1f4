using static TorchSharp.torch;

namespace AttnDistill.Data.Mixing;

/// <summary>
/// Mixing draws from torch's default CPU generator: seeded by the run's seed and saved in every
/// checkpoint, so a run with Mixup/CutMix and random erasing is repeatable and resumes bit-exactly
/// on the CPU (timm draws from numpy and Python's random instead, which a .NET process does not
/// have; the distributions are the same). The beta draw is Marsaglia and Tsang's gamma method,
/// Beta(a, a) = G1 / (G1 + G2). The normal fill of an erased box is drawn on the box's device.
/// </summary>
public sealed class TorchMixingRandom : IMixingRandom
{
    public static readonly TorchMixingRandom Instance = new();

    public double Unit()
    {
        using var t = rand(1, dtype: ScalarType.Float64);
        return t.item<double>();
    }

    public double Uniform(double low, double high) => low + (high - low) * Unit();

    public int Integer(int low, int high)
    {
        if (high <= low) throw new ArgumentException($"empty integer range [{low}, {high}).");
        using var t = randint(low, high, new long[] { 1 }, dtype: ScalarType.Int64);
        return (int)t.item<long>();
    }

    public double Beta(double alpha)
    {
        double a = Gamma(alpha), b = Gamma(alpha);
        return a / (a + b);
    }

    public Tensor Normal(long[] shape, ScalarType dtype, Device device) => randn(shape, dtype: dtype, device: device);

    private double StandardNormal()
    {
        using var t = randn(1, dtype: ScalarType.Float64);
        return t.item<double>();
    }

    /// <summary>Gamma(shape, 1) by Marsaglia and Tsang (2000); shape below 1 through the boost Gamma(a) = Gamma(a + 1) U^(1/a).</summary>
    private double Gamma(double shape)
    {
        if (shape < 1) return Gamma(shape + 1) * Math.Pow(Unit(), 1 / shape);
        double d = shape - 1.0 / 3, c = 1 / Math.Sqrt(9 * d);
        while (true)
        {
            double x = StandardNormal(), v = 1 + c * x;
            if (v <= 0) continue;
            v = v * v * v;
            double u = Unit();
            if (u < 1 - 0.0331 * x * x * x * x || Math.Log(u) < 0.5 * x * x + d * (1 - v + Math.Log(v))) return d * v;
        }
    }
}
