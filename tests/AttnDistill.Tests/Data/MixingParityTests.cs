using AttnDistill.Data.Mixing;
using AttnDistill.Evaluation;
using AttnDistill.Tests.TestSupport;
using Xunit;
using static TorchSharp.torch;

namespace AttnDistill.Tests.Data;

/// <summary>
/// Mixup/CutMix and random erasing against timm's own functions (fixtures/timm/make_mixing_fixtures.py
/// records every draw timm made; the C# side replays them and must give the same images and targets).
/// </summary>
public class MixingParityTests
{
    static readonly FixtureTable Fixtures = new("timm/mixing_fixtures.pt");
    const int Classes = 5, Repeats = 3;

    /// <summary>timm's recorded draws, handed out in order; the test fails if the C# side asks for more or fewer.</summary>
    sealed class Replay(double[] draws) : IMixingRandom
    {
        int _next;
        public int Left => draws.Length - _next;
        double Next() => _next < draws.Length ? draws[_next++] : throw new InvalidOperationException($"asked for draw {_next + 1} of {draws.Length}");
        public double Unit() => Next();
        public double Uniform(double low, double high) => Next();
        public int Integer(int low, int high)
        {
            int v = (int)Next();
            Assert.InRange(v, low, high - 1);
            return v;
        }
        public double Beta(double alpha) => Next();
        public Tensor Normal(long[] shape, ScalarType dtype, Device device)
        {
            long n = shape.Aggregate(1L, (a, b) => a * b);
            return tensor(Enumerable.Range(0, (int)n).Select(_ => Next()).ToArray(), dtype: ScalarType.Float64).reshape(shape).to(dtype, device);
        }
    }

    public static TheoryData<string> MixupCases => new() { "batch_both", "batch_mixup", "batch_cutmix", "batch_minmax", "batch_nocorrect", "pair_both", "elem_both" };

    static MixupOptions Options(string name) => name switch
    {
        "batch_both" => new() { MixupAlpha = 0.8, CutmixAlpha = 1.0, Prob = 1.0, SwitchProb = 0.5, Mode = MixupMode.Batch, LabelSmoothing = 0.1 },
        "batch_mixup" => new() { MixupAlpha = 0.8, CutmixAlpha = 0, Prob = 1.0, Mode = MixupMode.Batch, LabelSmoothing = 0.1 },
        "batch_cutmix" => new() { MixupAlpha = 0, CutmixAlpha = 1.0, Prob = 1.0, Mode = MixupMode.Batch, LabelSmoothing = 0 },
        "batch_minmax" => new() { MixupAlpha = 0, CutmixAlpha = 1.0, CutmixMinMax = (0.2, 0.8), Prob = 1.0, Mode = MixupMode.Batch, LabelSmoothing = 0.1 },
        "batch_nocorrect" => new() { MixupAlpha = 0, CutmixAlpha = 1.0, Prob = 1.0, Mode = MixupMode.Batch, CorrectLam = false, LabelSmoothing = 0.1 },
        "pair_both" => new() { MixupAlpha = 0.8, CutmixAlpha = 1.0, Prob = 0.7, SwitchProb = 0.5, Mode = MixupMode.Pair, LabelSmoothing = 0.1 },
        "elem_both" => new() { MixupAlpha = 0.8, CutmixAlpha = 1.0, Prob = 0.7, SwitchProb = 0.5, Mode = MixupMode.Elem, LabelSmoothing = 0.1 },
        _ => throw new ArgumentException(name),
    };

    static double[] Draws(string key) => Fixtures.Get(key + ".draws").data<double>().ToArray();

    [Theory]
    [MemberData(nameof(MixupCases))]
    public void MixupMatchesTimm(string name)
    {
        for (int r = 0; r < Repeats; r++)
        {
            using var scope = NewDisposeScope();
            string key = $"mixup.{name}.{r}";
            var replay = new Replay(Draws(key));
            var (mixed, target) = new Mixup(Options(name), Classes, replay).Apply(Fixtures.Get(key + ".x"), Fixtures.Get(key + ".y"));
            Assert.Equal(0, replay.Left);
            TensorAssert.Close(Fixtures.Get(key + ".mixed"), mixed, $"{key} images", 1e-6, 1e-6);
            TensorAssert.Close(Fixtures.Get(key + ".target"), target, $"{key} targets", 1e-6, 1e-6);
        }
    }

    public static TheoryData<string> ErasingCases => new() { "pixel", "rand_count3", "const" };

    [Theory]
    [MemberData(nameof(ErasingCases))]
    public void RandomErasingMatchesTimm(string name)
    {
        var (p, mode, count) = name switch
        {
            "pixel" => (0.7, ErasingMode.Pixel, 1),
            "rand_count3" => (0.9, ErasingMode.Rand, 3),
            _ => (0.8, ErasingMode.Const, 1),
        };
        for (int r = 0; r < Repeats; r++)
        {
            using var scope = NewDisposeScope();
            string key = $"erasing.{name}.{r}";
            var replay = new Replay(Draws(key));
            var erased = new RandomErasing(p, mode, count, replay).Apply(Fixtures.Get(key + ".x"));
            Assert.Equal(0, replay.Left);
            TensorAssert.Close(Fixtures.Get(key + ".erased"), erased, key, 1e-6, 1e-6);
        }
    }

    [Fact]
    public void SoftTargetCrossEntropyMatchesTimm()
    {
        var loss = SoftTargetCrossEntropy.Loss(Fixtures.Get("soft_ce.logits"), Fixtures.Get("soft_ce.target"));
        Assert.Equal(Fixtures.Get("soft_ce.loss").item<float>(), loss.item<float>(), 6);
    }

    [Fact]
    public void TheTorchDrawsAreSeededAndTheBetaHasItsMean()
    {
        manual_seed(3);
        var a = Enumerable.Range(0, 4000).Select(_ => TorchMixingRandom.Instance.Beta(0.8)).ToArray();
        manual_seed(3);
        var b = Enumerable.Range(0, 4000).Select(_ => TorchMixingRandom.Instance.Beta(0.8)).ToArray();
        Assert.Equal(a, b);
        Assert.InRange(a.Average(), 0.48, 0.52);                                   // Beta(a, a) has mean 1/2
        double variance = a.Select(v => (v - 0.5) * (v - 0.5)).Average();
        Assert.InRange(variance, 0.25 / 2.6 * 0.9, 0.25 / 2.6 * 1.1);              // a^2 / ((2a)^2 (2a + 1)) = 1 / (4 (2a + 1)) at a = 0.8
        Assert.All(a, v => Assert.InRange(v, 0.0, 1.0));
    }

    [Fact]
    public void AnOddBatchIsRefusedNamingTheFlag()
    {
        using var x = zeros(3, 3, 8, 8);
        using var y = zeros(3, dtype: ScalarType.Int64);
        var ex = Assert.Throws<ArgumentException>(() => new Mixup(new MixupOptions(), Classes).Apply(x, y));
        Assert.Contains("--batch-size", ex.Message);
    }
}
