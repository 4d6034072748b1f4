namespace AttnDistill.Data.Mixing;

/// <summary>timm's Mixup arguments under MAE main_finetune's flag names (defaults: MAE's fine-tuning recipes).</summary>
public sealed record MixupOptions
{
    /// <summary>--mixup: Mixup's beta alpha; 0 turns Mixup off.</summary>
    public double MixupAlpha { get; init; } = 0.8;
    /// <summary>--cutmix: CutMix's beta alpha; 0 turns CutMix off.</summary>
    public double CutmixAlpha { get; init; } = 1.0;
    /// <summary>--cutmix-minmax: box side bounds as fractions of the image (forces CutMix with alpha 1).</summary>
    public (double Min, double Max)? CutmixMinMax { get; init; }
    /// <summary>--mixup-prob: probability that a batch (or element) is mixed at all.</summary>
    public double Prob { get; init; } = 1.0;
    /// <summary>--mixup-switch-prob: probability of CutMix rather than Mixup when both are on.</summary>
    public double SwitchProb { get; init; } = 0.5;
    public MixupMode Mode { get; init; } = MixupMode.Batch;
    /// <summary>Recompute lambda from the clipped box area (timm: on).</summary>
    public bool CorrectLam { get; init; } = true;
    /// <summary>--smoothing: label smoothing applied to the mixed targets.</summary>
    public double LabelSmoothing { get; init; } = 0.1;

    /// <summary>True when mixing does anything (timm builds its mixup_fn only then).</summary>
    public bool Active => MixupAlpha > 0 || CutmixAlpha > 0 || CutmixMinMax is not null;

    public MixupOptions Validate()
    {
        if (!(MixupAlpha >= 0) || !double.IsFinite(MixupAlpha)) throw new ArgumentException($"--mixup must be >= 0 (0 = off; MAE recipes 0.8), got {MixupAlpha}.");
        if (!(CutmixAlpha >= 0) || !double.IsFinite(CutmixAlpha)) throw new ArgumentException($"--cutmix must be >= 0 (0 = off; MAE recipes 1.0), got {CutmixAlpha}.");
        if (CutmixMinMax is { } mm && !(mm.Min >= 0 && mm.Min < mm.Max && mm.Max <= 1)) throw new ArgumentException($"--cutmix-minmax needs 0 <= min < max <= 1, got ({mm.Min}, {mm.Max}).");
        if (!(Prob is >= 0 and <= 1)) throw new ArgumentException($"--mixup-prob must be in [0, 1], got {Prob}.");
        if (!(SwitchProb is >= 0 and <= 1)) throw new ArgumentException($"--mixup-switch-prob must be in [0, 1], got {SwitchProb}.");
        if (!(LabelSmoothing is >= 0 and < 1)) throw new ArgumentException($"--smoothing must be in [0, 1), got {LabelSmoothing}.");
        return this;
    }
}
