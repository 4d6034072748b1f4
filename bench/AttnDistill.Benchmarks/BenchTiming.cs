namespace AttnDistill.Benchmarks;

/// <summary>Every timed run of one case, with the machine's 1-minute load average at each run's start.</summary>
public sealed record BenchTiming(string Workload, string Variant, double Flops, int Items,
    IReadOnlyList<double> Seconds, IReadOnlyList<double> Loads)
{
    public double MedianSeconds => Median(Seconds);
    public double MinSeconds => Seconds.Min();
    public double MedianLoad => Median(Loads);
    public double FlopsPerSecond => Flops / MedianSeconds;
    public double ItemsPerSecond => Items / MedianSeconds;

    public static double Median(IReadOnlyList<double> values)
    {
        if (values.Count == 0) return double.NaN;
        var s = values.Order().ToArray();
        return s.Length % 2 == 1 ? s[s.Length / 2] : 0.5 * (s[s.Length / 2 - 1] + s[s.Length / 2]);
    }
}
