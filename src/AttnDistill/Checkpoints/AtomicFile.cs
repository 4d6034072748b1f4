using System.Runtime.InteropServices;

namespace AttnDistill.Checkpoints;

/// <summary>
/// Writes a file so that its final name only ever holds a complete file: the bytes go to
/// <c>path.tmp</c>, are flushed to disk (fsync), and the temporary file is renamed over the target
/// (rename(2) replaces atomically on one file system). A writer that throws leaves the previous
/// file untouched and the temporary file removed.
/// </summary>
public static partial class AtomicFile
{
    public static string TempPathFor(string path) => path + ".tmp";

    public static void Write(string path, Action<Stream> write)
    {
        ArgumentNullException.ThrowIfNull(write);
        string full = Path.GetFullPath(path);
        string? dir = Path.GetDirectoryName(full);
        if (!string.IsNullOrEmpty(dir)) Directory.CreateDirectory(dir);
        string tmp = TempPathFor(full);
        try
        {
            using (var fs = new FileStream(tmp, FileMode.Create, FileAccess.ReadWrite, FileShare.None, 1 << 16))
            {
                write(fs);
                // flushToDisk: true is fsync on Unix, FlushFileBuffers on Windows.
                fs.Flush(flushToDisk: true);
            }
            File.Move(tmp, full, overwrite: true);
            if (!string.IsNullOrEmpty(dir)) TrySyncDirectory(dir);
        }
        catch
        {
            TryDelete(tmp);
            throw;
        }
    }

    /// <summary>
    /// fsync of the directory makes the rename itself durable (POSIX); best effort, skipped where
    /// directories cannot be opened (Windows).
    /// </summary>
    public static bool TrySyncDirectory(string dir)
    {
        if (OperatingSystem.IsWindows()) return false;
        try
        {
            int fd = Open(dir, 0 /* O_RDONLY */);
            if (fd < 0) return false;
            bool ok = Fsync(fd) == 0;
            _ = Close(fd);
            return ok;
        }
        catch (DllNotFoundException) { return false; }
        catch (EntryPointNotFoundException) { return false; }
    }

    // "libc.so.6": the bare "libc.so" is a linker script on Debian when libc6-dev is installed.
    const string LibC = "libc.so.6";

    [LibraryImport(LibC, EntryPoint = "open", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Open(string path, int flags);

    [LibraryImport(LibC, EntryPoint = "fsync")]
    private static partial int Fsync(int fd);

    [LibraryImport(LibC, EntryPoint = "close")]
    private static partial int Close(int fd);

    static void TryDelete(string tmp)
    {
        try { File.Delete(tmp); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }
}
