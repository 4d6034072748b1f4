namespace AttnDistill.Pretraining.Dino;

/// <summary>DINO's schedules (utils.cosine_scheduler and the teacher temperature of DINOLoss), value for value.</summary>
public static class DinoSchedules
{
    /// <summary>
    /// utils.cosine_scheduler: a linear warm-up np.linspace(start, base, warmup_iters) (both ends
    /// included), then final + 0.5 (base - final)(1 + cos(pi i / n)) for i in [0, n), n the
    /// remaining iterations. One value per iteration, epochs x iterationsPerEpoch in all.
    /// </summary>
    public static double[] Cosine(double baseValue, double finalValue, int epochs, int iterationsPerEpoch, int warmupEpochs = 0, double startWarmupValue = 0)
    {
        int warmup = warmupEpochs * iterationsPerEpoch;
        int total = epochs * iterationsPerEpoch;
        if (warmup > total) throw new ArgumentException($"--warmup-epochs {warmupEpochs} exceeds --epochs {epochs}.");
        var s = new double[total];
        for (int i = 0; i < warmup; i++) s[i] = Linspace(startWarmupValue, baseValue, warmup, i);
        int n = total - warmup;
        for (int i = 0; i < n; i++)
            s[warmup + i] = finalValue + 0.5 * (baseValue - finalValue) * (1 + Math.Cos(Math.PI * i / n));
        return s;
    }

    /// <summary>DINOLoss's teacher_temp_schedule: np.linspace(warmup, final, warmupEpochs) then final for the other epochs.</summary>
    public static double[] TeacherTemperature(double warmupTeacherTemp, double teacherTemp, int warmupEpochs, int epochs)
    {
        var s = new double[Math.Max(epochs, warmupEpochs)];
        for (int i = 0; i < s.Length; i++) s[i] = i < warmupEpochs ? Linspace(warmupTeacherTemp, teacherTemp, warmupEpochs, i) : teacherTemp;
        return s;
    }

    /// <summary>numpy.linspace(start, stop, num)[i]: start + i x step, the last point exactly stop.</summary>
    public static double Linspace(double start, double stop, int num, int i)
    {
        if (num == 1) return start;
        if (i == num - 1) return stop;
        double step = (stop - start) / (num - 1);
        return start + i * step;
    }
}
