using System.Diagnostics;

namespace AttnDistill.Tests.Reliability;

/// <summary>What a fuzz run measured: outcomes, the slowest case and memory growth.</summary>
public sealed record FuzzReport(int Cases, int Loaded, int Refused, IReadOnlyList<string> Failures, double MaxSeconds, string SlowestCase,
    long PeakRssGrowthBytes, long RssGrowthBytes, IReadOnlyDictionary<string, int> Mutations)
{
    public override string ToString() =>
        $"{Cases} cases: {Loaded} loaded, {Refused} refused with a clear error, {Failures.Count} failures; slowest {MaxSeconds * 1000:F0} ms ({SlowestCase}); " +
        $"peak RSS growth {PeakRssGrowthBytes / (1 << 20)} MiB, RSS growth at the end {RssGrowthBytes / (1 << 20)} MiB; " +
        $"mutations {string.Join(", ", Mutations.OrderBy(kv => kv.Key).Select(kv => $"{kv.Key} {kv.Value}"))}";
}

/// <summary>One generated case: its mutation kind, a description for failures, and the work that loads it.</summary>
/// <param name="Run">Loads the case; returns normally when it loaded, throws when refused.</param>
/// <param name="Judge">Given what <paramref name="Run"/> threw, null when that is a clear refusal, else why it is not.</param>
/// <param name="Cleanup">Removes the case's files (only called when the case finished: a hung case keeps its file for a look).</param>
public sealed record FuzzCase(string Kind, string What, Action Run, Func<Exception, string?> Judge, Action? Cleanup = null);

/// <summary>
/// The loop every fuzzer shares: generate a case from a seeded <see cref="Random"/>, run it on a
/// worker with a time bound (a hang is a failure, not a stuck test), classify the outcome, and
/// track the slowest case and the process's RSS (peak and final) so unbounded memory shows.
/// No xunit here: the test suite and bench/soak run the same loop.
/// </summary>
public static class FuzzLoop
{
    public static FuzzReport Run(int cases, int randomSeed, Func<int, Random, FuzzCase> make, TimeSpan timeout, Action<string>? log = null)
    {
        var rng = new Random(randomSeed);
        var failures = new List<string>();
        var mutations = new Dictionary<string, int>();
        int loaded = 0, refused = 0;
        double maxSeconds = 0;
        string slowest = "";
        CheckpointFuzzer.ResetPeakRss();
        long rssBefore = CheckpointFuzzer.RssBytes(), peakBefore = CheckpointFuzzer.PeakRssBytes();
        for (int i = 0; i < cases; i++)
        {
            var c = make(i, rng);
            mutations[c.Kind] = mutations.GetValueOrDefault(c.Kind) + 1;
            Exception? error = null;
            var watch = Stopwatch.StartNew();
            var task = Task.Run(c.Run);
            bool finished;
            try { finished = task.Wait(timeout); }
            catch (AggregateException ex) { finished = true; error = ex.InnerException; }
            double seconds = watch.Elapsed.TotalSeconds;
            string what = $"case {i} ({c.Kind}, {c.What})";
            if (seconds > maxSeconds) { maxSeconds = seconds; slowest = what; }
            if (!finished) failures.Add($"{what}: no result after {timeout.TotalSeconds} s (hang)");
            else if (error is null) loaded++;
            else if (c.Judge(error) is { } why) failures.Add($"{what}: {why}");
            else refused++;
            if (finished) c.Cleanup?.Invoke();
            if (log is not null && (i + 1) % 500 == 0) log($"{i + 1} cases, {failures.Count} failures, RSS {CheckpointFuzzer.RssBytes() >> 20} MiB");
        }
        // When the peak mark could not be reset, the peak before the run is the baseline.
        return new FuzzReport(cases, loaded, refused, failures, maxSeconds, slowest,
            CheckpointFuzzer.PeakRssBytes() - Math.Max(rssBefore, peakBefore), CheckpointFuzzer.RssBytes() - rssBefore, mutations);
    }

    /// <summary>The error as a failure line: type, first line of the message (bounded), and where it was thrown.</summary>
    public static string Describe(Exception e)
    {
        string first = e.Message.Split('\n')[0];
        if (first.Length > 400) first = first[..400] + "...";
        string at = e.StackTrace?.Split('\n').FirstOrDefault()?.Trim() ?? "";
        return $"{e.GetType().Name}: {first} [{at}]";
    }
}
