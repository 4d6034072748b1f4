using System.Globalization;

namespace AttnDistill.Benchmarks;

/// <summary>
/// The 1-minute load average (Linux /proc/loadavg): on a shared 2-core machine every timing is
/// recorded with it, since other jobs steal cores and a fraction measured under load is a lower bound.
/// </summary>
public static class MachineLoad
{
    /// <summary>The 1-minute load average, or NaN where /proc/loadavg does not exist.</summary>
    public static double OneMinute()
    {
        try
        {
            string text = File.ReadAllText("/proc/loadavg");
            return double.Parse(text.Split(' ')[0], CultureInfo.InvariantCulture);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or FormatException)
        {
            return double.NaN;
        }
    }

    /// <summary>
    /// Waits (polling every 15 s) until the load is below <paramref name="threshold"/> or
    /// <paramref name="maxWait"/> has passed; returns the load seen last.
    /// </summary>
    public static double WaitForQuiet(double threshold, TimeSpan maxWait, Action<string>? log = null, CancellationToken cancel = default)
    {
        var until = DateTime.UtcNow + maxWait;
        double load = OneMinute();
        while (!(load < threshold) && !double.IsNaN(load) && DateTime.UtcNow < until && !cancel.IsCancellationRequested)
        {
            log?.Invoke($"load {load:F2} >= {threshold:F2}: waiting (until {until.ToLocalTime():HH:mm:ss})");
            cancel.WaitHandle.WaitOne(TimeSpan.FromSeconds(15));
            load = OneMinute();
        }
        return load;
    }
}
