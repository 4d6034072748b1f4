using AttnDistill.Pretraining.Dino;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace AttnDistill.Tests.Pretraining.Dino;

/// <summary>Against tests/fixtures/dino/make_dino_fixtures.py (DINO's own DINOHead, DINOLoss, cosine_scheduler; PyTorch 1.13).</summary>
public class DinoParityTests
{
    static readonly TestSupport.FixtureTable Table = new("dino/dino_fixtures.pt");
    static Tensor F(string name) => Table.Get(name);

    static void Close(Tensor expected, Tensor actual, string what, double atol = 1e-5)
    {
        Assert.Equal(expected.shape, actual.shape);
        double diff = (expected.to(float64) - actual.to(float64)).abs().max().item<double>();
        // 1e-5 absolute for values up to 1, relative to the largest value above that (float32 sums of many terms).
        double scale = Math.Max(1, expected.abs().max().item<float>());
        Assert.True(diff <= atol * scale, $"{what}: max |diff| {diff:G3} > {atol} x {scale:G3}");
    }

    [Fact]
    public void HeadForwardAndGradientsMatchDinoHead()
    {
        using var head = new DinoHead(12, new DinoHeadConfig { OutDim = 20, HiddenDim = 16, BottleneckDim = 8 });
        using (no_grad())
            foreach (var (name, p) in head.state_dict()) p.copy_(F("head." + name));
        Assert.Equal(Table.Raw.Keys.Cast<string>().Where(k => k.StartsWith("head.", StringComparison.Ordinal)).Select(k => k[5..]).Order(), head.state_dict().Keys.Order());
        using var x = F("head_x").requires_grad_();
        using var y = head.forward(x);
        Close(F("head_y"), y, "head output");
        (y * F("head_w")).sum().backward();
        Close(F("head_x_grad"), x.grad!, "input gradient");
        foreach (var (name, p) in head.named_parameters())
        {
            if (!p.requires_grad) { Assert.False(Table.Raw.ContainsKey("head_grad." + name)); continue; }
            Close(F("head_grad." + name), p.grad!, name + " gradient");
        }
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(4)]
    public void LossGradientAndCenterMatchDinoLoss(int epoch)
    {
        using var loss = new DinoLoss(20, 4, 0.04, 0.07, 3, 5);
        loss.LoadCenter(F("loss_center_before"));
        using var s = F("loss_student").requires_grad_();
        using var t = F("loss_teacher");
        using var l = loss.Compute(s, t, epoch);
        loss.UpdateCenter(t);
        l.backward();
        Close(F($"loss_e{epoch}"), l.reshape(1), "loss");
        Close(F($"loss_e{epoch}_grad"), s.grad!, "student gradient");
        Assert.True(F($"loss_center_after_e{epoch}").eq(loss.Center).all().item<bool>(), "centre update is not bit-identical");
    }

    [Fact]
    public void SchedulesAreExact()
    {
        static void Same(string name, double[] actual) => Assert.Equal(F(name).data<double>().ToArray(), actual);
        Same("sched_lr", DinoSchedules.Cosine(5e-4 * 64 / 256, 1e-6, 4, 7, warmupEpochs: 1));
        Same("sched_wd", DinoSchedules.Cosine(0.04, 0.4, 4, 7));
        Same("sched_m", DinoSchedules.Cosine(0.996, 1, 4, 7));
        Same("sched_temp", DinoSchedules.TeacherTemperature(0.04, 0.07, 3, 5));
    }

    [Fact]
    public void EmaIsBitIdenticalAfterFiveUpdates()
    {
        using var student = nn.Linear(6, 5);
        using var teacher = nn.Linear(6, 5);
        using (no_grad())
        {
            student.weight!.copy_(F("ema_student.weight")); student.bias!.copy_(F("ema_student.bias"));
            teacher.weight!.copy_(F("ema_teacher0.weight")); teacher.bias!.copy_(F("ema_teacher0.bias"));
        }
        var m = F("sched_m").data<double>().ToArray();
        for (int it = 0; it < 5; it++) TeacherEma.Update(student, teacher, m[it]);
        Assert.True(F("ema_teacher5.weight").eq(teacher.weight!).all().item<bool>());
        Assert.True(F("ema_teacher5.bias").eq(teacher.bias!).all().item<bool>());
    }
}
