using AttnDistill.Distributed;
using TorchSharp;
using TorchSharp.Modules;
using Xunit;
using static TorchSharp.torch;

namespace AttnDistill.Tests.Distributed;

/// <summary>The flat gradient buffer in one process, with a stand-in for the all-reduce.</summary>
public class GradientBucketsTests
{
    static Parameter[] Params(params long[] sizes) => sizes.Select(n => new Parameter(randn(n))).ToArray();

    [Fact]
    public void BucketsCutAtParameterBoundariesAndCoverTheBuffer()
    {
        // float32: a 64-byte cap is 16 elements; the flags (one per parameter) ride in the last bucket.
        var ps = Params(10, 5, 20, 3, 3);
        using var buckets = new GradientBuckets(ps, bucketBytes: 64);
        Assert.Equal(new (long, long)[] { (0, 15), (15, 20), (35, 6 + 5) }, buckets.Buckets);
        Assert.Equal(46L, buckets.Buckets.Sum(b => b.Length));
        Assert.Equal(46L, buckets.Flat.NumberOfElements);
        Assert.Equal(41L, buckets.GradientElements);
    }

    [Fact]
    public void AveragingLeavesGradientsAsViewsThatBackwardFillsInPlace()
    {
        var ps = Params(4, 6);
        using var buckets = new GradientBuckets(ps, bucketBytes: 8);
        (ps[0].sum() * 2 + ps[1].sum() * 3).backward();
        // Two identical ranks: the sum is twice each gradient, the average the gradient itself.
        int calls = 0;
        buckets.Average(t => { calls++; t.mul_(2); }, worldSize: 2);
        Assert.Equal(buckets.Buckets.Count, calls);
        Assert.True(ps[0].grad!.eq(2f).all().item<bool>());
        Assert.True(ps[1].grad!.eq(3f).all().item<bool>());
        Assert.True(buckets.Flat.narrow(0, 0, 4).eq(2f).all().item<bool>());

        // Zeroed in place (TorchSharp's zero_grad) then a new backward: straight into the buffer.
        foreach (var p in ps) p.grad!.zero_();
        (ps[1].sum() * 5).backward();
        Assert.True(buckets.Flat.narrow(0, 4, 6).eq(5f).all().item<bool>());
        Assert.True(buckets.Flat.narrow(0, 0, 4).eq(0f).all().item<bool>());
    }

    [Fact]
    public void AParameterWithoutGradientOnAnyRankKeepsNone()
    {
        var ps = Params(3, 3);
        using var buckets = new GradientBuckets(ps);
        ps[0].sum().backward();
        buckets.Average(_ => { }, worldSize: 1);
        Assert.NotNull(ps[0].grad);
        Assert.Null(ps[1].grad);
    }

    [Fact]
    public void AParameterWithGradientOnOtherRanksOnlyGetsTheirAverage()
    {
        // This rank skipped its batch (no gradient); the stand-in all-reduce adds a second rank
        // whose gradient is 4 everywhere and whose flags say "had a gradient".
        var ps = Params(2);
        using var buckets = new GradientBuckets(ps);
        buckets.Average(t =>
        {
            using var other = full(t.shape, 4f);
            other[-1] = 1f;   // the flag slot of the only parameter
            t.add_(other);
        }, worldSize: 2);
        Assert.NotNull(ps[0].grad);
        Assert.True(ps[0].grad!.eq(2f).all().item<bool>());
    }

    [Fact]
    public void SingleProcessCollectivesAreIdentities()
    {
        var one = SingleProcess.Instance;
        using var t = arange(6, dtype: ScalarType.Float32);
        one.SumInPlace(t);
        Assert.Equal(15f, t.sum().item<float>());
        using var g = one.AllGather(t);
        Assert.Equal(new long[] { 1, 6 }, g.shape);
        Assert.True(one.Any(true) && !one.Any(false));
        Assert.Equal(new[] { 1.5 }, one.AverageScalars(new[] { 1.5 }));
        Assert.Equal(new byte[] { 1, 2 }, Collectives.BroadcastBytes(one, new byte[] { 1, 2 }));
        Assert.Same(SingleProcess.Instance, DistributedContext.FromEnvironment(TorchSharp.torch.CPU));   // the test host is not under mpirun
    }
}
