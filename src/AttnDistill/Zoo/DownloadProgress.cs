namespace AttnDistill.Zoo;

/// <summary>A download's state: bytes on disk (a resumed part included), the total when the server says it, rate and ETA.</summary>
public sealed record DownloadProgress(string FileName, long Done, long? Total, double BytesPerSecond)
{
    public TimeSpan? Eta => Total is { } t && BytesPerSecond > 0 ? TimeSpan.FromSeconds((t - Done) / BytesPerSecond) : null;
}
