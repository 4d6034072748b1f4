namespace AttnDistill.Training;

/// <summary>Optimization recipe shared by every training loop (supplement Table 8 defaults).</summary>
public sealed record TrainerOptions
{
    public int Epochs { get; init; } = 100;
    public double WarmupEpochs { get; init; } = 40;
    /// <summary>Per-process micro-batch.</summary>
    public int BatchSize { get; init; } = 64;
    /// <summary>Images per optimizer step over all processes; reached by gradient accumulation. 0: no accumulation.</summary>
    public int EffectiveBatch { get; init; }
    public double BaseLr { get; init; } = 1.5e-4;
    /// <summary>Absolute peak lr; when null, BaseLr x EffectiveBatch / 256.</summary>
    public double? Lr { get; init; }
    public double MinLr { get; init; }
    public double WeightDecay { get; init; } = 0.05;
    public double Beta1 { get; init; } = 0.9;
    public double Beta2 { get; init; } = 0.95;
    /// <summary>Max global gradient norm; 0 disables clipping.</summary>
    public double ClipGrad { get; init; }
    public int CheckpointEveryEpochs { get; init; } = 1;
    /// <summary>Checkpoints kept on disk, oldest removed first (timm's --checkpoint-hist); 0 keeps every one, e.g. to evaluate each epoch's model afterwards.</summary>
    public int CheckpointHistory { get; init; } = 2;
    public int LogEverySteps { get; init; } = 10;
    /// <summary>A run stops when more than this fraction of an epoch's batches were non-finite.</summary>
    public double MaxSkippedFraction { get; init; } = 0.01;
    public int Seed { get; init; }
    /// <summary>
    /// bf16: each micro-batch's forward and loss run inside an <see cref="Models.Autocast"/> scope
    /// (matrix products in bf16); parameters, gradients, accumulation and the optimizer stay fp32.
    /// </summary>
    public ComputePrecision Precision { get; init; } = ComputePrecision.Float32;

    /// <summary>Gradient-accumulation steps so that batch x world x accum = effective batch.</summary>
    public int AccumulationSteps(int worldSize)
    {
        int perStep = BatchSize * worldSize;
        if (EffectiveBatch <= 0 || EffectiveBatch == perStep) return 1;
        if (EffectiveBatch % perStep != 0 || EffectiveBatch < perStep)
            throw new ArgumentException(
                $"effective batch {EffectiveBatch} is not a multiple of batch size {BatchSize} x {worldSize} process(es) = {perStep}: choose --effective-batch as a multiple of {perStep}, or change --batch-size.");
        return EffectiveBatch / perStep;
    }

    public double PeakLr(int worldSize) =>
        Lr ?? LrSchedule.ScaledLr(BaseLr, EffectiveBatch > 0 ? EffectiveBatch : BatchSize * worldSize);

    /// <summary>One-line errors naming the setting (by its CLI flag), before any heavy work.</summary>
    public TrainerOptions Validate(int worldSize = 1)
    {
        if (Epochs <= 0) throw new ArgumentException($"--epochs must be positive, got {Epochs}.");
        if (!(WarmupEpochs >= 0) || !double.IsFinite(WarmupEpochs)) throw new ArgumentException($"--warmup-epochs must be >= 0, got {WarmupEpochs}.");
        if (BatchSize <= 0) throw new ArgumentException($"--batch-size must be positive, got {BatchSize}.");
        if (EffectiveBatch < 0) throw new ArgumentException($"--effective-batch must be >= 0 (0 = no accumulation), got {EffectiveBatch}.");
        if (!(BaseLr > 0) || !double.IsFinite(BaseLr)) throw new ArgumentException($"--blr (base lr) must be positive, got {BaseLr}: the paper uses 1.5e-4.");
        if (Lr is { } lr && (!(lr > 0) || !double.IsFinite(lr))) throw new ArgumentException($"--lr must be positive, got {lr}.");
        if (!(MinLr >= 0) || !double.IsFinite(MinLr)) throw new ArgumentException($"--min-lr must be >= 0, got {MinLr}.");
        if (!(WeightDecay >= 0) || !double.IsFinite(WeightDecay)) throw new ArgumentException($"--weight-decay must be >= 0, got {WeightDecay}.");
        if (!(Beta1 is >= 0 and < 1) || !(Beta2 is >= 0 and < 1)) throw new ArgumentException($"AdamW betas must be in [0, 1), got ({Beta1}, {Beta2}).");
        if (!(ClipGrad >= 0)) throw new ArgumentException($"--clip-grad must be >= 0 (0 disables it), got {ClipGrad}.");
        if (CheckpointEveryEpochs <= 0) throw new ArgumentException($"--checkpoint-every must be positive, got {CheckpointEveryEpochs}.");
        if (CheckpointHistory < 0) throw new ArgumentException($"--checkpoint-hist must be >= 0 (0 keeps every checkpoint), got {CheckpointHistory}.");
        if (LogEverySteps <= 0) throw new ArgumentException($"--log-every (log interval) must be positive, got {LogEverySteps}.");
        if (!(MaxSkippedFraction is >= 0 and <= 1)) throw new ArgumentException($"the max skipped fraction of non-finite batches must be in [0, 1], got {MaxSkippedFraction}.");
        AccumulationSteps(worldSize);
        double peak = PeakLr(worldSize);
        if (MinLr > peak) throw new ArgumentException($"--min-lr {MinLr} is above the peak lr {peak:G4}: the cosine would rise; lower --min-lr.");
        return this;
    }
}
