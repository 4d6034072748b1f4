using AttnDistill.Distillation;
using Xunit;
using static TorchSharp.torch;

namespace AttnDistill.Tests.Distillation;

public class CompressLossTests
{
    [Fact]
    public void MatchesPyTorchWithAFixedQueue()
    {
        using var scope = NewDisposeScope();
        var queue0 = LossFixtures.Get("cq.queue0");
        using var loss = new CompressLoss(featureDim: 8, queueSize: 10, tau: 0.04, dtype: ScalarType.Float64);
        loss.LoadState(queue0, (long)LossFixtures.Get("cq.ptr0").item<double>());

        var fs = LossFixtures.Get("feat_s").requires_grad_(true);
        var ft = LossFixtures.Get("feat_t");
        var value = loss.Compute(fs, ft);
        value.backward();

        LossFixtures.AssertClose(LossFixtures.Get("cq.loss"), value.reshape(1), "CompRess loss");
        LossFixtures.AssertClose(LossFixtures.Get("cq.g_feat"), fs.grad!, "CompRess d/d student feature", 1e-5, 1e-12);
        LossFixtures.AssertClose(LossFixtures.Get("cq.queue1"), loss.Queue, "queue after the FIFO update (wraps around)");
        Assert.Equal((long)LossFixtures.Get("cq.ptr1").item<double>(), loss.Pointer);
    }

    [Fact]
    public void InitialQueueIsSeededUniformNoise()
    {
        using var a = new CompressLoss(16, 64, seed: 7);
        using var b = new CompressLoss(16, 64, seed: 7);
        using var c = new CompressLoss(16, 64, seed: 8);
        Assert.True(a.Queue.eq(b.Queue).all().item<bool>());
        Assert.False(a.Queue.eq(c.Queue).all().item<bool>());
        double s = 1.0 / Math.Sqrt(16 / 3.0);
        Assert.True(a.Queue.abs().max().item<float>() <= s);
        Assert.Equal(new long[] { 64, 16 }, a.Queue.shape);
        Assert.False(a.Queue.requires_grad);
    }

    [Fact]
    public void QueueIsFifoOfNormalizedTeacherFeaturesAndStateRoundTrips()
    {
        using var scope = NewDisposeScope();
        using var loss = new CompressLoss(4, 5, seed: 1);
        var t1 = randn(3, 4);
        var t2 = randn(3, 4);
        loss.Enqueue(t1);
        Assert.Equal(3, loss.Pointer);
        loss.Enqueue(t2);                       // rows 3, 4, then wraps to 0
        Assert.Equal(1, loss.Pointer);
        var n2 = nn.functional.normalize(t2, p: 2.0, dim: 1);
        LossFixtures.AssertClose(n2[TensorIndex.Slice(0, 2)], loss.Queue[TensorIndex.Slice(3, 5)], "rows 3-4", 1e-6, 1e-7);
        LossFixtures.AssertClose(n2[2], loss.Queue[0], "wrapped row 0", 1e-6, 1e-7);

        using var restored = new CompressLoss(4, 5, seed: 99);
        restored.LoadState(loss.Queue, loss.Pointer);
        Assert.True(restored.Queue.eq(loss.Queue).all().item<bool>());
        Assert.Equal(loss.Pointer, restored.Pointer);
        Assert.Throws<ArgumentException>(() => restored.LoadState(zeros(6, 4), 0));
    }

    [Fact]
    public void StudentEqualToTeacherGivesZeroLoss()
    {
        using var scope = NewDisposeScope();
        using var loss = new CompressLoss(8, 32, seed: 3);
        var f = randn(4, 8);
        Assert.True(Math.Abs(loss.Compute(f, f, update: false).item<float>()) < 1e-5);
        Assert.Equal(0, loss.Pointer);
    }
}
