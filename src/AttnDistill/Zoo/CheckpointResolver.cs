using System.Net.Sockets;

namespace AttnDistill.Zoo;

/// <summary>
/// The one place where a --teacher / --checkpoint value becomes a file: a path is returned as it is;
/// a zoo name (dino_vits16, or timm's vit_small_patch16_224.dino) becomes the torch.hub cache file,
/// downloaded first when it is not there. A bare word that is neither is an error naming the
/// nearest zoo names.
/// </summary>
public static class CheckpointResolver
{
    static readonly Lazy<HttpClient> SharedHttp = new(() => new HttpClient(new SocketsHttpHandler
    {
        ConnectTimeout = TimeSpan.FromSeconds(20),
        AutomaticDecompression = System.Net.DecompressionMethods.None,
    })
    { Timeout = System.Threading.Timeout.InfiniteTimeSpan });

    /// <param name="value">What the user typed.</param>
    /// <param name="flag">The option it came from, for messages ("--teacher").</param>
    /// <param name="settings">Cache folder and mirror; default from the environment.</param>
    /// <param name="http">The client (tests pass one bound to their loopback server).</param>
    public static string Resolve(string value, string flag, Action<string>? log = null, IProgress<DownloadProgress>? progress = null,
        ZooSettings? settings = null, HttpClient? http = null, CancellationToken cancel = default)
    {
        if (File.Exists(value) || Directory.Exists(value) || LooksLikePath(value)) return value;
        // The evaluation's pixel floor is a reserved name, not a file or a zoo teacher.
        if (value == Evaluation.EvaluatedBackbone.Pixels) return value;
        var entry = TeacherZoo.Find(value);
        if (entry is null)
            throw new FileNotFoundException(
                $"{flag} {value}: no such file, and not a zoo teacher. Nearest zoo names: {string.Join(", ", TeacherZoo.Nearest(value, 3))} (attndistill models lists them).", value);
        settings ??= ZooSettings.FromEnvironment();
        string path = settings.CachePathOf(entry);
        if (File.Exists(path))
        {
            log?.Invoke($"{flag} {entry.Name}: {path} (cached)");
            return path;
        }
        var url = settings.UrlOf(entry);
        log?.Invoke($"{flag} {entry.Name}: downloading {url} to {path}");
        try
        {
            string sha = new CheckpointDownloader(http ?? SharedHttp.Value).Download(url, path, entry.Sha256, progress, cancel);
            log?.Invoke(entry.Sha256 is null
                ? $"{flag} {entry.Name}: SHA-256 {sha} (the authors publish none: recorded in {path}{CheckpointDownloader.RecordedHashSuffix} to check later downloads)"
                : $"{flag} {entry.Name}: SHA-256 verified");
        }
        catch (Exception ex) when (ex is HttpRequestException or IOException or SocketException or TaskCanceledException
                                   && ex is not InvalidDataException && !cancel.IsCancellationRequested)
        {
            string why = (ex.InnerException ?? ex).Message.TrimEnd('.');
            throw new IOException(
                $"{flag} {entry.Name}: cannot download {url} ({why}). Offline? Put the file at {path} (or set TORCH_HOME, or {ZooSettings.BaseUrlVariable} for a mirror); a partial download resumes on the next run.", ex);
        }
        return path;
    }

    /// <summary>Has a folder separator or a checkpoint extension: meant as a file, so a missing one is the loader's "not found".</summary>
    static bool LooksLikePath(string value) =>
        value.Contains('/') || value.Contains('\\') ||
        new[] { ".pth", ".pt", ".safetensors", ".ckpt", ".bin", ".tar" }.Any(e => value.EndsWith(e, StringComparison.OrdinalIgnoreCase));
}
