using AttnDistill.Evaluation;
using Xunit;
using static TorchSharp.torch;

namespace AttnDistill.Tests.Evaluation;

public class KnnTests
{
    const string Fixture = "knn_fixture.pt";

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(256)]
    public void Matches_dino_reference_exactly_for_every_k_and_chunk_size(int chunk)
    {
        using var scope = NewDisposeScope();
        var ks = EvalFixtures.Get(Fixture, "ks").data<long>().Select(k => (int)k).ToArray();
        var results = Knn.Classify(
            EvalFixtures.Get(Fixture, "train_features"), EvalFixtures.Get(Fixture, "train_labels"),
            EvalFixtures.Get(Fixture, "test_features"), EvalFixtures.Get(Fixture, "test_labels"),
            numClasses: 10, ks: ks, chunkSize: chunk);
        Assert.Equal(ks, results.Select(r => r.K));
        foreach (var r in results)
        {
            double top1 = EvalFixtures.Get(Fixture, $"top1_k{r.K}").item<double>();
            double top5 = EvalFixtures.Get(Fixture, $"top5_k{r.K}").item<double>();
            Assert.True(top1 == r.Top1, $"k={r.K}: top-1 {r.Top1} vs DINO {top1}");
            Assert.True(top5 == r.Top5, $"k={r.K}: top-5 {r.Top5} vs DINO {top5}");
            Assert.InRange(r.Top1, 1, 99);
        }
    }

    [Fact]
    public void Default_ks_are_dino_s()
    {
        Assert.Equal(new[] { 10, 20, 100, 200 }, Knn.DefaultKs);
        Assert.Equal(0.07, Knn.DefaultTemperature);
    }

    [Fact]
    public void Bank_equal_to_queries_gives_perfect_top1_with_k1()
    {
        using var scope = NewDisposeScope();
        var f = randn(50, 8);
        var y = arange(50, dtype: ScalarType.Int64).remainder(5);
        var r = Knn.Classify(f, y, f * 3.0, y, numClasses: 5, ks: new[] { 1 });
        Assert.Equal(100.0, r[0].Top1);
        Assert.Equal(100.0, r[0].Top5);
    }

    [Fact]
    public void Rejects_k_larger_than_the_bank_and_mismatched_shapes()
    {
        using var scope = NewDisposeScope();
        var f = randn(10, 4);
        var y = zeros(10, dtype: ScalarType.Int64);
        Assert.Throws<ArgumentException>(() => Knn.Classify(f, y, f, y, 2, ks: new[] { 20 }));
        Assert.Throws<ArgumentException>(() => Knn.Classify(f, y, randn(10, 5), y, 2, ks: new[] { 1 }));
        Assert.Throws<ArgumentException>(() => Knn.Classify(f, y.narrow(0, 0, 9), f, y, 2, ks: new[] { 1 }));
    }
}
