using System.Globalization;

namespace AttnDistill.Benchmarks;

/// <summary>
/// Resident memory of this process from /proc/self/status: current (VmRSS) and peak (VmHWM).
/// The peak can be reset (writing 5 to /proc/self/clear_refs, Linux 4.0+), so a workload's own
/// peak is measured after the earlier ones.
/// </summary>
public static class PeakMemory
{
    public static long CurrentBytes() => Read("VmRSS:");

    public static long PeakBytes() => Read("VmHWM:");

    /// <summary>Resets the peak to the current resident size; false where the kernel does not allow it.</summary>
    public static bool ResetPeak()
    {
        try
        {
            File.WriteAllText("/proc/self/clear_refs", "5");
            return true;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    static long Read(string key)
    {
        try
        {
            foreach (var line in File.ReadLines("/proc/self/status"))
                if (line.StartsWith(key, StringComparison.Ordinal))
                {
                    var kb = line[key.Length..].Trim().Split(' ')[0];
                    return long.Parse(kb, CultureInfo.InvariantCulture) * 1024;
                }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException) { }
        return -1;
    }
}
