namespace AttnDistill.Checkpoints;

/// <summary>
/// Writes a file so that its final name only ever holds a complete file: the bytes go to
/// <c>path.tmp</c>, are flushed to disk (fsync), and the temporary file is renamed over the target
/// (rename(2) replaces atomically on one file system). A writer that throws leaves the previous
/// file untouched and the temporary file removed.
/// </summary>
public static class AtomicFile
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
        }
        catch
        {
            TryDelete(tmp);
            throw;
        }
    }

    static void TryDelete(string tmp)
    {
        try { File.Delete(tmp); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }
}
