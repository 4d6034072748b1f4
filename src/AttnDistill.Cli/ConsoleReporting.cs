using AttnDistill.Distributed;
using AttnDistill.Training;
using Spectre.Console;

namespace AttnDistill.Cli;

/// <summary>
/// Progress bars (rate, ETA) and summary tables on the terminal; plain lines when redirected.
/// Under mpirun only rank 0 reports (every rank prints its errors, prefixed with its rank).
/// </summary>
public static class ConsoleReporting
{
    private static bool Quiet => DistributedContext.LaunchRank > 0;

    /// <summary>An error line is cut after this many characters (a recipe with a list of 10^6 values must not print 36 MB).</summary>
    public const int MaxErrorLength = 2000;

    public static void Info(string message)
    {
        if (!Quiet) AnsiConsole.MarkupLineInterpolated($"[grey]{TerminalText.SafeKeepLines(message)}[/]");
    }

    /// <summary>
    /// One line on stderr, never wrapped (Spectre wraps at 80 columns when output is redirected,
    /// which would split an error in a log file); red only on a terminal; prefixed with the rank
    /// under mpirun.
    /// </summary>
    public static void Error(string message)
    {
        string line = string.Join(" ", message.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
        // Names from files reach this line: escape sequences in them must not reach the terminal raw; and it stays one readable line.
        line = TerminalText.Safe(line, MaxErrorLength);
        if (DistributedContext.LaunchWorldSize > 1) line = $"rank {DistributedContext.LaunchRank}: {line}";
        bool color = !Console.IsErrorRedirected && Environment.GetEnvironmentVariable("NO_COLOR") is null;
        Console.Error.WriteLine(color ? $"\u001b[31merror:\u001b[0m {line}" : $"error: {line}");
    }

    /// <summary>Runs <paramref name="work"/> with a progress bar fed by its <see cref="TrainProgress"/> reports.</summary>
    public static T WithTrainingProgress<T>(string title, Func<IProgress<TrainProgress>, T> work)
    {
        if (Quiet) return work(new Reporter(_ => { }));
        T result = default!;
        AnsiConsole.Progress()
            .AutoClear(false)
            .HideCompleted(false)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(),
                new ElapsedTimeColumn(), new RemainingTimeColumn(), new SpinnerColumn())
            .Start(ctx =>
            {
                var task = ctx.AddTask(title, maxValue: 1);
                var progress = new Reporter(p =>
                {
                    task.MaxValue = Math.Max(1, p.TotalBatches);
                    task.Value = p.DoneBatches;
                    string loss = string.Join(" ", p.Loss.Select(kv => $"{kv.Key} {kv.Value:G4}"));
                    task.Description = $"{title} epoch {p.Epoch + 1}/{p.Epochs} {loss} lr {p.Lr:G3} {p.ImagesPerSecond:F0} img/s";
                });
                result = work(progress);
                task.Value = task.MaxValue;
            });
        return result;
    }

    /// <summary>
    /// Runs <paramref name="work"/> with one progress bar per stage it reports ("features train",
    /// "features val", "probe epochs" ...), each with rate and ETA.
    /// </summary>
    public static T WithStageProgress<T>(string title, Func<AttnDistill.Evaluation.StageProgress, T> work)
    {
        T result = default!;
        AnsiConsole.Progress()
            .AutoClear(false)
            .HideCompleted(false)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(),
                new ElapsedTimeColumn(), new RemainingTimeColumn(), new SpinnerColumn())
            .Start(ctx =>
            {
                var tasks = new Dictionary<string, ProgressTask>();
                result = work((stage, done, total) =>
                {
                    if (!tasks.TryGetValue(stage, out var task)) tasks[stage] = task = ctx.AddTask($"{title}: {stage}", maxValue: Math.Max(1, total));
                    task.MaxValue = Math.Max(1, total);
                    task.Value = done;
                });
                foreach (var t in tasks.Values) t.Value = t.MaxValue;
            });
        return result;
    }

    sealed class Reporter(Action<TrainProgress> report) : IProgress<TrainProgress>
    {
        public void Report(TrainProgress value) => report(value);
    }

    public static void Summary(string title, IEnumerable<(string Key, string Value)> rows)
    {
        if (Quiet) return;
        var table = new Table().Title(title).AddColumn("what").AddColumn("value");
        foreach (var (k, v) in rows) table.AddRow(Markup.Escape(TerminalText.Safe(k)), Markup.Escape(TerminalText.Safe(v)));
        AnsiConsole.Write(table);
    }
}
