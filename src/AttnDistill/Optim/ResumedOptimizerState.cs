using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace AttnDistill.Optim;

/// <summary>
/// What a resumed optimizer must hold before the first step: finite moments, a second moment that
/// is not negative, a step count that is not negative, and options (lr, betas, eps, weight decay)
/// a run of this program could have saved. TorchSharp's <c>load_state_dict</c> reads whatever
/// numbers the bytes hold; a flipped bit in a crafted or damaged file would otherwise surface an
/// epoch later as "non-finite loss, lower the lr", which blames the wrong thing.
/// </summary>
public static class ResumedOptimizerState
{
    /// <summary>The first thing wrong with <paramref name="optimizer"/>'s loaded state, or null when it is sound.</summary>
    public static string? Problem(OptimizerHelper optimizer)
    {
        var dict = optimizer.state_dict();
        foreach (var options in dict.Options)
        {
            if (options.LearningRate is { } lr && !(double.IsFinite(lr) && lr >= 0)) return $"a learning rate of {lr}";
            switch (options)
            {
                case AdamW.Options a:
                    if (a.beta1 is { } b1 && !(b1 >= 0 && b1 < 1)) return $"beta1 {b1}";
                    if (a.beta2 is { } b2 && !(b2 >= 0 && b2 < 1)) return $"beta2 {b2}";
                    if (a.eps is { } eps && !(double.IsFinite(eps) && eps > 0)) return $"eps {eps}";
                    if (a.weight_decay is { } wd && !(double.IsFinite(wd) && wd >= 0)) return $"weight decay {wd}";
                    break;
                case Lars.Options l:
                    if (l.Momentum is { } m && !(m >= 0 && m < 1)) return $"momentum {m}";
                    if (l.WeightDecay is { } lwd && !(double.IsFinite(lwd) && lwd >= 0)) return $"weight decay {lwd}";
                    break;
            }
        }
        foreach (var state in dict.State)
        {
            switch (state)
            {
                case AdamW.State a:
                    if (a.step < 0) return $"a step count of {a.step}";
                    if (!AllFinite(a.exp_avg)) return "a non-finite first moment (exp_avg)";
                    if (!AllFinite(a.exp_avg_sq) || AnyNegative(a.exp_avg_sq)) return "a second moment (exp_avg_sq) that is negative or not finite";
                    break;
                case Lars.State l:
                    if (l.Mu is not null && !AllFinite(l.Mu)) return "a non-finite momentum buffer";
                    break;
            }
        }
        return null;
    }

    private static bool AllFinite(Tensor? t)
    {
        if (t is null || t.numel() == 0) return true;
        using var scope = NewDisposeScope();
        return t.isfinite().all().item<bool>();
    }

    private static bool AnyNegative(Tensor t)
    {
        if (t.numel() == 0) return false;
        using var scope = NewDisposeScope();
        return t.min().to_type(ScalarType.Float64).item<double>() < 0;
    }
}
