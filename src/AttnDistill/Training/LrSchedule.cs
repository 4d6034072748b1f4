namespace AttnDistill.Training;

/// <summary>
/// MAE's per-iteration schedule (util/lr_sched.py): linear warm-up from 0 to the peak over
/// <c>warmupEpochs</c>, then a half-cycle cosine down to <c>minLr</c> at <c>totalEpochs</c>.
/// The epoch is fractional (iteration / iterations-per-epoch + epoch), so it is a pure function
/// of the global step.
/// </summary>
public static class LrSchedule
{
    public static double At(double epoch, double peakLr, double minLr, double warmupEpochs, double totalEpochs)
    {
        if (epoch < warmupEpochs) return peakLr * epoch / warmupEpochs;
        double span = totalEpochs - warmupEpochs;
        if (span <= 0) return peakLr;
        double progress = Math.Min(1.0, (epoch - warmupEpochs) / span);
        return minLr + (peakLr - minLr) * 0.5 * (1.0 + Math.Cos(Math.PI * progress));
    }

    /// <summary>lr = base_lr x effective batch / 256 (the linear scaling rule of MAE and DINO).</summary>
    public static double ScaledLr(double baseLr, int effectiveBatch) => baseLr * effectiveBatch / 256.0;
}
