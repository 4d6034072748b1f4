namespace AttnDistill;

/// <summary>
/// Which C allocator serves libtorch's tensors in this process. glibc's malloc fragments under
/// a training step's pattern of large short-lived buffers (its resident peak kept growing over
/// the first steps); tcmalloc, preloaded, is both faster and leaner (docs/RESULTS.md, Performance).
/// An allocator can only be swapped before the process starts, hence advice, not action.
/// </summary>
public static class NativeAllocator
{
    /// <summary>Debian's tcmalloc (package libtcmalloc-minimal4).</summary>
    public const string TcmallocPath = "/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4";

    /// <summary>"tcmalloc", "jemalloc" or "glibc malloc" (or "unknown" off Linux).</summary>
    public static string Name()
    {
        if (!OperatingSystem.IsLinux()) return "unknown";
        try
        {
            string maps = File.ReadAllText("/proc/self/maps");
            if (maps.Contains("libtcmalloc", StringComparison.Ordinal)) return "tcmalloc";
            if (maps.Contains("libjemalloc", StringComparison.Ordinal)) return "jemalloc";
            return "glibc malloc";
        }
        catch (IOException) { return "unknown"; }
    }

    /// <summary>How to switch to tcmalloc, or null when it is in use or not applicable.</summary>
    public static string? Advice()
    {
        if (Name() != "glibc malloc") return null;
        return File.Exists(TcmallocPath)
            ? $"start with LD_PRELOAD={TcmallocPath} for faster steps and a lower memory peak"
            : "install libtcmalloc-minimal4 and start with LD_PRELOAD=" + TcmallocPath + " for faster steps and a lower memory peak";
    }
}
