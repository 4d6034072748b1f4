namespace AttnDistill.Evaluation;

/// <summary>
/// MAE's linear-probing recipe (docs/METHOD.md, section 5.3; supplement Table 9): LARS, momentum 0.9,
/// weight decay 0, lr = base lr x batch / 256, warm-up 10 of 90 epochs then cosine to 0; here
/// with a sweep of base lrs trained side by side.
/// </summary>
public sealed record LinearProbeOptions
{
    /// <summary>
    /// Base lrs of the sweep: a half-decade grid from MAE's 0.1 up. MAE's 0.1 is tuned for batch
    /// 16384 (peak lr 6.4); LARS moves each weight matrix by about lr x 0.001 x its norm per step,
    /// so the small batches of CPU runs (peak lr = base x batch / 256) need larger base lrs.
    /// </summary>
    public IReadOnlyList<double> BaseLrs { get; init; } = new[] { 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0 };
    public int Epochs { get; init; } = 90;
    public double WarmupEpochs { get; init; } = 10;
    public int BatchSize { get; init; } = 256;
    public double WeightDecay { get; init; }
    public double Momentum { get; init; } = 0.9;
    public double MinLr { get; init; }
    /// <summary>Seeds head initialization and the order of the training rows.</summary>
    public int Seed { get; init; }

    /// <summary>Peak lr of a head: base lr x batch / 256.</summary>
    public double PeakLr(double baseLr) => baseLr * BatchSize / 256.0;

    public LinearProbeOptions Validate()
    {
        if (BaseLrs.Count == 0 || BaseLrs.Any(lr => !(lr > 0)))
            throw new ArgumentException($"the lr sweep needs positive base lrs, got [{string.Join(", ", BaseLrs)}].");
        if (Epochs <= 0) throw new ArgumentException($"epochs must be positive, got {Epochs}.");
        if (WarmupEpochs < 0 || WarmupEpochs > Epochs) throw new ArgumentException($"warm-up epochs must be in [0, {Epochs}], got {WarmupEpochs}.");
        if (BatchSize <= 0) throw new ArgumentException($"batch size must be positive, got {BatchSize}.");
        if (WeightDecay < 0 || Momentum < 0 || MinLr < 0) throw new ArgumentException("weight decay, momentum and min lr must be >= 0.");
        return this;
    }
}
