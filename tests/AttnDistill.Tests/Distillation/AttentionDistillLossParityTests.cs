using AttnDistill.Distillation;
using Xunit;
using static TorchSharp.torch;

namespace AttnDistill.Tests.Distillation;

/// <summary>Loss values and student gradients against the PyTorch statement of the loss (float64 fixtures).</summary>
public class AttentionDistillLossParityTests
{
    static readonly DistillLossOptions Defaults = new();

    public static TheoryData<string> CaseNames() => new(Cases.Keys);

    // name -> (options, teacher fixture prefix, value weighting, patch-token align)
    static readonly Dictionary<string, (DistillLossOptions Options, string Teacher, bool Value)> Cases = new()
    {
        ["interp_product"] = (Defaults, "t6g4", false),
        ["interp_max"] = (Defaults with { Aggregation = AttentionAggregation.Max }, "t6g4", false),
        ["interp_mean"] = (Defaults with { Aggregation = AttentionAggregation.Mean }, "t6g4", false),
        ["interp_min"] = (Defaults with { Aggregation = AttentionAggregation.Min }, "t6g4", false),
        ["same_product"] = (Defaults, "t6g2", false),
        ["same_max"] = (Defaults with { Aggregation = AttentionAggregation.Max }, "t6g2", false),
        ["same_mean"] = (Defaults with { Aggregation = AttentionAggregation.Mean }, "t6g2", false),
        ["same_min"] = (Defaults with { Aggregation = AttentionAggregation.Min }, "t6g2", false),
        ["same_none"] = (Defaults with { Aggregation = AttentionAggregation.None }, "t3g2", false),
        ["interp_none"] = (Defaults with { Aggregation = AttentionAggregation.None }, "t3g4", false),
        ["interp_none_exact"] = (Defaults with { Aggregation = AttentionAggregation.None, ClampInterpolation = false }, "t3g4", false),
        ["value_product"] = (Defaults with { WeightByValue = true }, "t6g4", true),
        ["mse_product"] = (Defaults with { AttnLoss = AttentionLossKind.MSE }, "t6g4", false),
        ["mse_none"] = (Defaults with { AttnLoss = AttentionLossKind.MSE, Aggregation = AttentionAggregation.None }, "t3g2", false),
        ["allblocks_product"] = (Defaults with { AllBlocks = true }, "t6g4", false),
        ["patchalign_product"] = (Defaults with { PatchTokenAlign = true }, "t6g2", false),
        ["weights_t5"] = (Defaults with { WeightCls = 0.5, WeightAttn = 0.3, AttnTemperature = 5.0 }, "t6g4", false),
        ["lambda0"] = (Defaults with { WeightAttn = 0.0 }, "t6g4", false),
    };

    [Theory]
    [MemberData(nameof(CaseNames))]
    public void MatchesPyTorchLossAndGradients(string name) => RunCase(name, ScalarType.Float64, 1e-5);

    [Fact]
    public void Float32MatchesTheFloat64ReferenceClosely() => RunCase("interp_product", ScalarType.Float32, 1e-4);

    static void RunCase(string name, ScalarType dtype, double rtol)
    {
        using var scope = NewDisposeScope();
        var (options, teacher, value) = Cases[name];
        bool align = options.PatchTokenAlign;
        var fs = LossFixtures.Get(align ? "tok_s" : "feat_s").to_type(dtype).requires_grad_(true);
        var ft = LossFixtures.Get(align ? "tok_t" : "feat_t").to_type(dtype);
        var logits = new[] { LossFixtures.Get("logits_s0"), LossFixtures.Get("logits_s1") }
            .Select(l => l.to_type(dtype).requires_grad_(true)).ToArray();
        var attnS = logits.Select(l => l.softmax(-1)).ToList();          // (B, 3, 1 + N_s) per block
        var attnT = new[] { LossFixtures.Get($"{teacher}_0"), LossFixtures.Get($"{teacher}_1") }
            .Select(t => t.to_type(dtype)).ToList();
        Tensor? vnLogits = null;
        List<Tensor>? vnS = null, vnT = null;
        if (value)
        {
            vnLogits = LossFixtures.Get("vn_logits_s").to_type(dtype).requires_grad_(true);
            vnS = new() { vnLogits.exp(), vnLogits.exp() };
            var t = LossFixtures.Get("vn_t6g4").to_type(dtype);
            vnT = new() { t, t };
        }

        using var parts = AttentionDistillLoss.Compute(options, fs, ft, attnS, attnT, vnS, vnT);
        parts.Total.backward();

        var expected = LossFixtures.Get($"{name}.loss");
        var actual = stack(new[] { parts.Total.detach(), parts.Cls.detach(), parts.Attn.detach() });
        LossFixtures.AssertClose(expected, actual, $"{name} loss [total, cls, attn]", rtol);
        LossFixtures.AssertClose(LossFixtures.Get(align ? $"{name}.g_tok" : $"{name}.g_feat"), fs.grad!, $"{name} d/d feature", rtol);
        for (int k = 0; k < 2; k++)
        {
            var g = logits[k].grad ?? zeros_like(logits[k]);
            LossFixtures.AssertClose(LossFixtures.Get($"{name}.g_logits{k}"), g, $"{name} d/d attention logits, block {k}", rtol, rtol * 1e-3);
        }
        if (value)
            LossFixtures.AssertClose(LossFixtures.Get($"{name}.g_vn"), vnLogits!.grad!, $"{name} d/d value-norm logits", rtol, rtol * 1e-3);
    }

    [Fact]
    public void InterpolationMatchesPyTorch()
    {
        using var scope = NewDisposeScope();
        var t = LossFixtures.Get("t6g4_0");
        LossFixtures.AssertClose(LossFixtures.Get("interp_map.clamped"), AttentionInterpolation.ToGrid(t, 2), "interpolated (clamped)");
        LossFixtures.AssertClose(LossFixtures.Get("interp_map.exact"), AttentionInterpolation.ToGrid(t, 2, clampNegative: false), "interpolated (exact)");
    }

    [Theory]
    [InlineData(AttentionAggregation.Product, "product")]
    [InlineData(AttentionAggregation.Max, "max")]
    [InlineData(AttentionAggregation.Mean, "mean")]
    [InlineData(AttentionAggregation.Min, "min")]
    public void AggregationMatchesPyTorch(AttentionAggregation mode, string key)
    {
        using var scope = NewDisposeScope();
        var a = HeadAggregation.Aggregate(LossFixtures.Get("t6g2_0"), mode, 10.0);
        LossFixtures.AssertClose(LossFixtures.Get($"agg_map.{key}"), a, $"aggregated {key}");
    }
}
