namespace AttnDistill.Zoo;

/// <summary>
/// Where torch.hub keeps downloaded weights, so files users already fetched with PyTorch are found:
/// $TORCH_HOME/hub/checkpoints, else $XDG_CACHE_HOME/torch/hub/checkpoints, else
/// ~/.cache/torch/hub/checkpoints (torch.hub's own rule, torch/hub.py _get_torch_home).
/// </summary>
public static class TorchHubCache
{
    public static string CheckpointsDir(Func<string, string?>? environment = null)
    {
        environment ??= Environment.GetEnvironmentVariable;
        string? torchHome = NonEmpty(environment("TORCH_HOME"));
        if (torchHome is null)
        {
            string cacheHome = NonEmpty(environment("XDG_CACHE_HOME"))
                               ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache");
            torchHome = Path.Combine(cacheHome, "torch");
        }
        return Path.Combine(torchHome, "hub", "checkpoints");
    }

    static string? NonEmpty(string? s) => string.IsNullOrWhiteSpace(s) ? null : s;
}
