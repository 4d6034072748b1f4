using System.Diagnostics;
using System.Text;

namespace AttnDistill.Runs;

/// <summary>
/// The lock file of a run folder (<c>run.lock</c>): held (an exclusive lock on the open file,
/// which the kernel drops when the process ends however it ends) for as long as the run's
/// process lives, and holding its PID. A second run on the same folder is refused with the
/// holder's PID, since two runs would interleave log.txt lines and checkpoints of different
/// seeds. A lock file left by a process that is gone is taken over with a warning.
/// </summary>
public sealed class RunFolderLock : IDisposable
{
    public const string FileName = "run.lock";

    private static readonly Dictionary<string, RunFolderLock> Held = CreateRegistry();

    private static Dictionary<string, RunFolderLock> CreateRegistry()
    {
        // A run that ends normally empties its lock file, so only a killed run leaves a PID behind (a stale lock).
        AppDomain.CurrentDomain.ProcessExit += (_, _) =>
        {
            lock (Held) foreach (var l in Held.Values.ToList()) l.Dispose();
        };
        return new Dictionary<string, RunFolderLock>(StringComparer.Ordinal);
    }
    private FileStream? _stream;

    private RunFolderLock(string path, FileStream stream)
    {
        Path = path;
        _stream = stream;
    }

    /// <summary>The lock file.</summary>
    public string Path { get; }

    /// <summary>
    /// Takes the folder's lock for the rest of this process (a later command of the same process
    /// on the same folder, as tests and the quickstart run them, reuses it). Throws
    /// <see cref="IOException"/> naming the holder's PID when another process holds it.
    /// </summary>
    public static RunFolderLock HoldForProcess(string dir, Action<string>? warn = null)
    {
        string key = System.IO.Path.GetFullPath(dir);
        lock (Held)
        {
            if (Held.TryGetValue(key, out var mine) && mine._stream is not null) return mine;
            var taken = Acquire(dir, warn);
            Held[key] = taken;
            return taken;
        }
    }

    /// <summary>Takes the lock of <paramref name="dir"/> (created if absent) until disposed.</summary>
    public static RunFolderLock Acquire(string dir, Action<string>? warn = null)
    {
        Directory.CreateDirectory(dir);
        string path = System.IO.Path.Combine(dir, FileName);
        FileStream stream;
        try
        {
            // FileShare.None is an exclusive flock() on Unix: a second open anywhere fails while this one lives.
            stream = new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (IOException ex) when (ex is not FileNotFoundException and not DirectoryNotFoundException)
        {
            string holder = ReadHolder(path);
            throw new IOException(
                $"--out {dir} is in use by another run ({holder}; lock file {path}): wait for it to end, stop it, or choose another --out.", ex);
        }
        string previous = ReadAll(stream).Trim();
        if (previous.Length > 0 && int.TryParse(previous.Split(' ')[0], out int pid) && pid != Environment.ProcessId)
            warn?.Invoke($"taking over the stale lock {path} of PID {pid}, which {(IsAlive(pid) ? "no longer holds it" : "is no longer running")}.");
        stream.SetLength(0);
        var text = Encoding.UTF8.GetBytes($"{Environment.ProcessId} {Environment.MachineName} {DateTime.UtcNow:O}\n");
        stream.Write(text);
        stream.Flush(flushToDisk: true);
        return new RunFolderLock(path, stream);
    }

    private static string ReadAll(FileStream stream)
    {
        stream.Position = 0;
        var buffer = new byte[Math.Min(4096, Math.Max(0, stream.Length))];
        int n = stream.ReadAtLeast(buffer, buffer.Length, throwOnEndOfStream: false);
        return Encoding.UTF8.GetString(buffer, 0, n);
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "open", SetLastError = true)]
    private static extern int NativeOpen(string path, int flags);

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "read", SetLastError = true)]
    private static extern unsafe nint NativeRead(int fd, byte* buffer, nint count);

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "close")]
    private static extern int NativeClose(int fd);

    /// <summary>
    /// "PID 1234 on host" from the held lock file. Read with a plain open(2): .NET's FileStream
    /// would ask for a shared flock, which the holder's exclusive one refuses.
    /// </summary>
    private static unsafe string ReadHolder(string path)
    {
        string text = "";
        try
        {
            int fd = NativeOpen(path, 0 /* O_RDONLY */);
            if (fd >= 0)
            {
                try
                {
                    byte* buffer = stackalloc byte[256];
                    nint n = NativeRead(fd, buffer, 256);
                    if (n > 0) text = Encoding.UTF8.GetString(buffer, (int)n);
                }
                finally { NativeClose(fd); }
            }
        }
        catch (Exception e) when (e is EntryPointNotFoundException or DllNotFoundException) { }
        var parts = text.Trim().Split(' ');
        return parts.Length >= 2 ? $"PID {TerminalText.Safe(parts[0], 16)} on {TerminalText.Safe(parts[1], 64)}"
            : parts[0].Length > 0 ? $"PID {TerminalText.Safe(parts[0], 16)}" : "PID unknown";
    }

    private static bool IsAlive(int pid)
    {
        try
        {
            using var p = Process.GetProcessById(pid);
            return !p.HasExited;
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException) { return false; }
    }

    /// <summary>Releases the lock and empties the file (it stays: the next run takes it).</summary>
    public void Dispose()
    {
        try { _stream?.SetLength(0); } catch (IOException) { }
        _stream?.Dispose();
        _stream = null;
        lock (Held)
        {
            foreach (var kv in Held.Where(kv => ReferenceEquals(kv.Value, this)).ToList()) Held.Remove(kv.Key);
        }
    }
}
