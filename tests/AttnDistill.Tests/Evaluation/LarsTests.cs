using AttnDistill.Optim;
using TorchSharp;
using TorchSharp.Modules;
using Xunit;
using static TorchSharp.torch;

namespace AttnDistill.Tests.Evaluation;

public class LarsTests
{
    const string Fixture = "lars_fixture.pt";
    static readonly (string Name, int Group)[] Params =
        { ("w", 0), ("b", 0), ("conv", 0), ("norm", 0), ("zero_w", 1), ("still", 1), ("b1", 1) };
    static readonly double[] BaseLr = { 0.1, 0.5 };
    static readonly double[] LrScale = { 1.0, 0.7, 0.3, 0.05 };

    static (Lars Opt, Dictionary<string, Parameter> P) Build()
    {
        var p = Params.ToDictionary(x => x.Name, x => new Parameter(EvalFixtures.Get(Fixture, $"init.{x.Name}")));
        var groups = new[]
        {
            new Lars.ParamGroup(Params.Where(x => x.Group == 0).Select(x => p[x.Name]), lr: BaseLr[0], weightDecay: 0.05),
            new Lars.ParamGroup(Params.Where(x => x.Group == 1).Select(x => p[x.Name]), lr: BaseLr[1], weightDecay: 0.0),
        };
        return (new Lars(groups, momentum: 0.9, trustCoefficient: 0.001), p);
    }

    /// <summary>Sets every parameter's gradient to the fixture's step gradient (d/dp sum(p * g) = g).</summary>
    static void Step(Lars opt, Dictionary<string, Parameter> p, int step)
    {
        using var scope = NewDisposeScope();
        opt.zero_grad();
        foreach (var (g, i) in opt.ParamGroups.Select((g, i) => (g, i))) g.LearningRate = BaseLr[i] * LrScale[step];
        var loss = Params.Select(x => (p[x.Name] * EvalFixtures.Get(Fixture, $"grad{step}.{x.Name}")).sum()).Aggregate((a, b) => a + b);
        loss.backward();
        opt.step();
    }

    static double MaxDiff(Tensor a, Tensor b)
    {
        using var scope = NewDisposeScope();
        return (a.detach().to_type(ScalarType.Float64) - b.to_type(ScalarType.Float64)).abs().max().item<double>();
    }

    [Fact]
    public void Four_steps_match_mae_lars_within_1e_6()
    {
        using var scope = NewDisposeScope();
        var (opt, p) = Build();
        for (int s = 0; s < LrScale.Length; s++) Step(opt, p, s);
        var states = opt.state_dict().State.Cast<Lars.State>().ToArray();
        for (int i = 0; i < Params.Length; i++)
        {
            string name = Params[i].Name;
            double dp = MaxDiff(p[name], EvalFixtures.Get(Fixture, $"final.{name}"));
            double dm = MaxDiff(states[i].Mu!, EvalFixtures.Get(Fixture, $"mu.{name}"));
            Assert.True(dp <= 1e-6, $"{name}: parameter differs by {dp:g3}");
            Assert.True(dm <= 1e-6, $"{name}: momentum differs by {dm:g3}");
        }
        // The |p| = 0 branch moved the zero matrix; the |dp| = 0 branch left "still" in place.
        Assert.True(p["zero_w"].abs().sum().item<float>() > 0);
        Assert.True(MaxDiff(p["still"], EvalFixtures.Get(Fixture, "init.still")) == 0);
        opt.Dispose();
    }

    [Fact]
    public void Saved_state_resumes_identically()
    {
        using var scope = NewDisposeScope();
        var (a, pa) = Build();
        Step(a, pa, 0);
        Step(a, pa, 1);
        using var stream = new MemoryStream();
        using (var writer = new BinaryWriter(stream, System.Text.Encoding.UTF8, leaveOpen: true)) a.save_state_dict(writer);

        var (b, pb) = Build();
        using (var noGrad = no_grad())
            foreach (var (name, _) in Params) pb[name].copy_(pa[name]);
        foreach (var g in b.ParamGroups) g.LearningRate = 123; // overwritten by the loaded options
        stream.Position = 0;
        using (var reader = new BinaryReader(stream)) b.load_state_dict(reader);
        Assert.Equal(BaseLr[0] * LrScale[1], b.ParamGroups.First().LearningRate, 12);

        Step(a, pa, 2);
        Step(b, pb, 2);
        foreach (var (name, _) in Params) Assert.Equal(0.0, MaxDiff(pa[name], pb[name]));
        a.Dispose();
        b.Dispose();
    }

    [Fact]
    public void One_dimensional_parameters_get_plain_momentum_sgd()
    {
        using var scope = NewDisposeScope();
        var bias = new Parameter(ones(3));
        var opt = new Lars(new[] { bias }, lr: 0.5, weightDecay: 0.1, momentum: 0.9);
        bias.sum().backward();                       // grad = 1
        opt.step();                                  // mu = 1, p = 1 - 0.5
        Assert.Equal(0.5f, bias[0].item<float>(), 6);
        opt.step();                                  // mu = 0.9 + 1, p = 0.5 - 0.95
        Assert.Equal(-0.45f, bias[0].item<float>(), 6);
        opt.Dispose();
    }

    [Fact]
    public void Groups_inherit_defaults_and_reject_bad_settings()
    {
        using var scope = NewDisposeScope();
        var w = new Parameter(ones(2, 2));
        var opt = new Lars(new[] { new Lars.ParamGroup(new[] { w }) }, lr: 0.3, weightDecay: 0.01);
        var o = (Lars.Options)((ParamGroup)opt.ParamGroups.First()).Options;
        Assert.Equal(0.3, o.LearningRate);
        Assert.Equal(0.01, o.WeightDecay);
        Assert.Equal(0.9, opt.Momentum);
        Assert.Throws<ArgumentException>(() => new Lars(new[] { w }, lr: -1));
        Assert.Throws<ArgumentException>(() => new Lars(new[] { w }, trustCoefficient: 0));
        opt.Dispose();
    }
}
