using AttnDistill.Distributed;
using AttnDistill.Zoo;
using Spectre.Console;

namespace AttnDistill.Cli;

/// <summary>Resolves a --teacher / --checkpoint value with a download bar (bytes, rate, ETA) when a zoo teacher must be fetched.</summary>
public static class ZooDownloads
{
    public static string Resolve(string value, string flag, CancellationToken cancel = default)
    {
        if (DistributedContext.LaunchRank > 0 || Console.IsOutputRedirected)
            return CheckpointResolver.Resolve(value, flag, ConsoleReporting.Info, new LineProgress(), cancel: cancel);
        string result = value;
        AnsiConsole.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new DownloadedColumn(),
                new TransferSpeedColumn(), new RemainingTimeColumn())
            .Start(ctx =>
            {
                ProgressTask? task = null;
                result = CheckpointResolver.Resolve(value, flag, ConsoleReporting.Info, new Reporter(p =>
                {
                    task ??= ctx.AddTask(p.FileName, maxValue: Math.Max(1, p.Total ?? 1));
                    if (p.Total is { } t) task.MaxValue = t;
                    task.Value = p.Done;
                }), cancel: cancel);
            });
        return result;
    }

    sealed class Reporter(Action<DownloadProgress> report) : IProgress<DownloadProgress>
    {
        public void Report(DownloadProgress value) => report(value);
    }

    /// <summary>Redirected output: one line every 10 % (a log file gets no bar animation).</summary>
    sealed class LineProgress : IProgress<DownloadProgress>
    {
        int _lastDecile = -1;
        public void Report(DownloadProgress p)
        {
            if (p.Total is not { } t || t <= 0 || DistributedContext.LaunchRank > 0) return;
            int decile = (int)(10 * p.Done / t);
            if (decile == _lastDecile) return;
            _lastDecile = decile;
            string eta = p.Eta is { } e ? $", ETA {e:hh\\:mm\\:ss}" : "";
            ConsoleReporting.Info($"{p.FileName}: {p.Done / 1e6:F1} / {t / 1e6:F1} MB, {p.BytesPerSecond / 1e6:F1} MB/s{eta}");
        }
    }
}
