using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;

namespace AttnDistill.Zoo;

/// <summary>
/// Downloads one file into a cache folder: into <c>NAME.partial</c> first, resumed with an HTTP Range
/// request after a dropped connection (in the same call, and in a later one), verified against the
/// expected SHA-256 (the published one, else the one recorded in <c>NAME.sha256</c> by an earlier
/// verified download), then renamed into place. A wrong checksum removes the part and fails.
/// </summary>
public sealed class CheckpointDownloader(HttpClient http, int maxAttempts = 4)
{
    public const string PartialSuffix = ".partial";
    public const string RecordedHashSuffix = ".sha256";

    /// <summary>Downloads <paramref name="url"/> to <paramref name="destination"/>; returns the file's SHA-256.</summary>
    /// <exception cref="HttpRequestException">The server cannot be reached or answers with an error, after all attempts.</exception>
    /// <exception cref="InvalidDataException">The checksum does not match (the part is removed).</exception>
    public string Download(Uri url, string destination, string? expectedSha256, IProgress<DownloadProgress>? progress = null,
        CancellationToken cancel = default)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(destination))!);
        string partial = destination + PartialSuffix;
        string? expected = (expectedSha256 ?? ReadRecordedHash(destination))?.ToLowerInvariant();
        // One process downloads; another one that wants the same file waits for it (mpirun ranks).
        using (var part = OpenExclusive(partial, destination, cancel))
        {
            if (part is null) return Sha256Of(destination);   // another process finished it meanwhile
            for (int attempt = 1; ; attempt++)
            {
                try
                {
                    if (Fetch(url, part, Path.GetFileName(destination), progress, cancel)) break;
                }
                catch (Exception ex) when (attempt < maxAttempts && ex is IOException or HttpRequestException && !IsPermanent(ex))
                {
                    // The connection dropped: the bytes so far stay and the next request asks for the rest.
                    Thread.Sleep(TimeSpan.FromMilliseconds(200 * attempt));
                }
            }
            part.Flush();
        }
        string actual = Sha256Of(partial);
        if (expected is not null && actual != expected)
        {
            File.Delete(partial);
            throw new InvalidDataException($"{url}: SHA-256 {actual} does not match the expected {expected}; the download was removed. Try again, or check the mirror.");
        }
        File.Move(partial, destination, overwrite: true);
        if (expectedSha256 is null) File.WriteAllText(destination + RecordedHashSuffix, actual + "\n");
        return actual;
    }

    /// <summary>One request for the bytes the part lacks; true when the file is complete.</summary>
    bool Fetch(Uri url, FileStream part, string fileName, IProgress<DownloadProgress>? progress, CancellationToken cancel)
    {
        long have = part.Length;
        using var request = new HttpRequestMessage(HttpMethod.Get, url);
        if (have > 0) request.Headers.Range = new RangeHeaderValue(have, null);
        using var response = http.Send(request, HttpCompletionOption.ResponseHeadersRead, cancel);
        if (response.StatusCode == HttpStatusCode.RequestedRangeNotSatisfiable && have > 0)
        {
            // The part is already whole (or longer than the file): start over once, without a range.
            part.SetLength(0);
            return Fetch(url, part, fileName, progress, cancel);
        }
        if (!response.IsSuccessStatusCode)
            throw new HttpRequestException($"HTTP {(int)response.StatusCode} {response.ReasonPhrase}", null, response.StatusCode);
        if (response.StatusCode != HttpStatusCode.PartialContent) have = 0;   // the server ignored the range: restart
        part.SetLength(have);
        part.Position = have;
        long? total = response.Content.Headers.ContentLength is { } length ? have + length : null;
        using var body = response.Content.ReadAsStream(cancel);
        var buffer = new byte[1 << 16];
        var clock = System.Diagnostics.Stopwatch.StartNew();
        long fetched = 0;
        long lastReport = -1;
        int n;
        while ((n = body.Read(buffer, 0, buffer.Length)) > 0)
        {
            cancel.ThrowIfCancellationRequested();
            part.Write(buffer, 0, n);
            fetched += n;
            long ms = clock.ElapsedMilliseconds;
            if (progress is not null && ms - lastReport >= 100)
            {
                lastReport = ms;
                progress.Report(new DownloadProgress(fileName, have + fetched, total, fetched / Math.Max(1e-3, clock.Elapsed.TotalSeconds)));
            }
        }
        long done = have + fetched;
        progress?.Report(new DownloadProgress(fileName, done, total, fetched / Math.Max(1e-3, clock.Elapsed.TotalSeconds)));
        if (total is { } t && done < t) throw new IOException($"the connection closed after {done} of {t} bytes");
        return true;
    }

    static bool IsPermanent(Exception ex) => ex is HttpRequestException { StatusCode: { } code } && (int)code is >= 400 and < 500;

    /// <summary>The part, opened for this process alone; null when another process completed the file while we waited.</summary>
    static FileStream? OpenExclusive(string partial, string destination, CancellationToken cancel)
    {
        while (true)
        {
            try
            {
                return new FileStream(partial, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
            }
            catch (IOException) when (File.Exists(partial))
            {
                cancel.ThrowIfCancellationRequested();
                Thread.Sleep(1000);
                if (File.Exists(destination) && !File.Exists(partial)) return null;
            }
        }
    }

    static string? ReadRecordedHash(string destination)
    {
        string path = destination + RecordedHashSuffix;
        return File.Exists(path) ? File.ReadAllText(path).Trim() : null;
    }

    public static string Sha256Of(string path)
    {
        using var fs = File.OpenRead(path);
        return Convert.ToHexStringLower(SHA256.HashData(fs));
    }
}
