using System.Diagnostics;

namespace AttnDistill.Benchmarks;

/// <summary>
/// Times the variants of one workload side by side: each case is warmed up, then the cases run in
/// turn (A B C A B C ...), so a burst of load from other processes hits every variant alike.
/// </summary>
public static class BenchRunner
{
    public static IReadOnlyList<BenchTiming> Measure(IReadOnlyList<BenchCase> cases, int warmup, int repeats,
        Action<string>? log = null, CancellationToken cancel = default)
    {
        if (repeats <= 0) throw new ArgumentException($"repeats must be positive, got {repeats}.");
        foreach (var c in cases)
            for (int i = 0; i < warmup; i++)
            {
                cancel.ThrowIfCancellationRequested();
                c.Run();
            }
        var seconds = cases.Select(_ => new List<double>()).ToArray();
        var loads = cases.Select(_ => new List<double>()).ToArray();
        for (int r = 0; r < repeats; r++)
            for (int i = 0; i < cases.Count; i++)
            {
                cancel.ThrowIfCancellationRequested();
                loads[i].Add(MachineLoad.OneMinute());
                var watch = Stopwatch.StartNew();
                cases[i].Run();
                seconds[i].Add(watch.Elapsed.TotalSeconds);
                log?.Invoke($"  {cases[i].Workload} {cases[i].Variant}: {seconds[i][^1]:F3} s (load {loads[i][^1]:F2})");
            }
        return cases.Select((c, i) => new BenchTiming(c.Workload, c.Variant, c.Flops, c.Items, seconds[i], loads[i])).ToArray();
    }
}
