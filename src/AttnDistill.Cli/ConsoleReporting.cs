using AttnDistill.Distributed;
using AttnDistill.Runs;
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

    /// <summary>
    /// Runs a job with progress bars (rate, ETA): one bar for its training loop (epoch, loss, lr,
    /// images/s) and one per named stage it reports ("features train", "probe epochs" ...). The
    /// job gets them as its <see cref="RunContext.Progress"/>.
    /// </summary>
    public static T WithProgress<T>(string title, RunContext context, Func<RunContext, T> work)
    {
        if (Quiet) return work(context with { Progress = SilentProgress.Instance });
        T result = default!;
        AnsiConsole.Progress()
            .AutoClear(false)
            .HideCompleted(false)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(),
                new ElapsedTimeColumn(), new RemainingTimeColumn(), new SpinnerColumn())
            .Start(ctx =>
            {
                var tasks = new Dictionary<string, ProgressTask>();
                result = work(context with { Progress = new Bars(ctx, title, tasks) });
                foreach (var t in tasks.Values) t.Value = t.MaxValue;
            });
        return result;
    }

    /// <summary>The Spectre tasks of one job.</summary>
    sealed class Bars(ProgressContext ctx, string title, Dictionary<string, ProgressTask> tasks) : IRunProgress
    {
        private readonly Dictionary<string, ProgressTask> _tasks = tasks;

        public IRunProgress ForJob(string job) => new Bars(ctx, job, _tasks);

        public void Training(TrainProgress p)
        {
            var task = Task(title, p.TotalBatches);
            task.Value = p.DoneBatches;
            string loss = string.Join(" ", p.Loss.Select(kv => $"{kv.Key} {kv.Value:G4}"));
            task.Description = $"{title} epoch {p.Epoch + 1}/{p.Epochs} {loss} lr {p.Lr:G3} {p.ImagesPerSecond:F0} img/s";
        }

        public void Stage(string stage, int done, int total) => Task($"{title}: {stage}", total).Value = done;

        ProgressTask Task(string name, long total)
        {
            if (!_tasks.TryGetValue(name, out var task)) _tasks[name] = task = ctx.AddTask(name, maxValue: Math.Max(1, total));
            task.MaxValue = Math.Max(1, total);
            return task;
        }
    }

    public static void Summary(string title, IEnumerable<(string Key, string Value)> rows)
    {
        if (Quiet) return;
        var table = new Table().Title(title).AddColumn("what").AddColumn("value");
        foreach (var (k, v) in rows) table.AddRow(Markup.Escape(TerminalText.Safe(k)), Markup.Escape(TerminalText.Safe(v)));
        AnsiConsole.Write(table);
    }
}
