namespace AttnDistill.Zoo;

/// <summary>
/// Where zoo teachers are cached and fetched from. <see cref="BaseUrl"/> (environment variable
/// <c>ATTNDISTILL_ZOO_URL</c>) replaces the authors' hosts with a mirror that serves the cache's
/// file names flat (<c>BASE/dino_deitsmall16_pretrain.pth</c>): a copy of a torch.hub cache folder
/// behind any static file server is such a mirror.
/// </summary>
public sealed record ZooSettings(string CacheDir, string? BaseUrl = null)
{
    public const string BaseUrlVariable = "ATTNDISTILL_ZOO_URL";

    public static ZooSettings FromEnvironment(Func<string, string?>? environment = null)
    {
        environment ??= Environment.GetEnvironmentVariable;
        string? mirror = environment(BaseUrlVariable);
        return new ZooSettings(TorchHubCache.CheckpointsDir(environment), string.IsNullOrWhiteSpace(mirror) ? null : mirror.Trim());
    }

    public Uri UrlOf(TeacherZooEntry entry) =>
        BaseUrl is null ? new Uri(entry.Url) : new Uri(BaseUrl.TrimEnd('/') + "/" + Uri.EscapeDataString(entry.FileName));

    public string CachePathOf(TeacherZooEntry entry) => Path.Combine(CacheDir, entry.FileName);
}
