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

    /// <summary>
    /// Test seam for write errors: wraps the temporary file's stream (e.g. in one that fails like a
    /// full disk). Null in normal use.
    /// </summary>
    internal static Func<string, Stream, Stream>? WrapTempStream { get; set; }

    /// <summary>
    /// <see cref="File.WriteAllText(string, string)"/> (UTF-8, no BOM) through <see cref="Write"/>:
    /// a run folder's config.yaml and metrics.json are either the old file or the new one, never half
    /// of either, when the disk fills or the process is killed mid-write.
    /// </summary>
    public static void WriteAllText(string path, string text)
    {
        byte[] bytes = new System.Text.UTF8Encoding(encoderShouldEmitUTF8Identifier: false).GetBytes(text);
        Write(path, s => s.Write(bytes));
    }

    /// <summary>
    /// Writes through <paramref name="write"/> to path.tmp, syncs, renames over <paramref name="path"/>.
    /// On any failure the previous file is untouched, the temporary file is removed, and an I/O error
    /// is rethrown as an <see cref="IOException"/> that names the file and the reason.
    /// </summary>
    public static void Write(string path, Action<Stream> write)
    {
        ArgumentNullException.ThrowIfNull(write);
        string full = Path.GetFullPath(path);
        string? dir = Path.GetDirectoryName(full);
        string tmp = TempPathFor(full);
        try
        {
            if (!string.IsNullOrEmpty(dir)) Directory.CreateDirectory(dir);
            using (var fs = new FileStream(tmp, FileMode.Create, FileAccess.ReadWrite, FileShare.None, 1 << 16))
            {
                var target = WrapTempStream?.Invoke(tmp, fs) ?? fs;
                write(target);
                target.Flush();
                // flushToDisk: true is fsync on Unix, FlushFileBuffers on Windows.
                fs.Flush(flushToDisk: true);
            }
            File.Move(tmp, full, overwrite: true);
            if (!string.IsNullOrEmpty(dir)) TrySyncDirectory(dir);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            TryDelete(tmp);
            bool exists = File.Exists(full);
            throw new IOException(
                $"cannot write {full}: {ex.Message}{(IsDiskFull(ex) ? " (the disk is full: free space, then resume)" : "")}; " +
                (exists ? "the previous file there is intact." : "nothing was written there."), ex);
        }
        catch
        {
            TryDelete(tmp);
            throw;
        }
    }

    /// <summary>ENOSPC (28) on Linux, ERROR_DISK_FULL / ERROR_HANDLE_DISK_FULL on Windows.</summary>
    static bool IsDiskFull(Exception ex) =>
        (ex.HResult & 0xFFFF) is 28 or 0x70 or 0x27 || ex.Message.Contains("No space left", StringComparison.OrdinalIgnoreCase);

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
