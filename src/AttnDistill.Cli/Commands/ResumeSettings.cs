using System.CommandLine;

namespace AttnDistill.Cli.Commands;

/// <summary>
/// What --resume may change. The run folder's config.yaml holds the settings the run started
/// with; a resumed run is compared with it setting by setting:
/// <list type="bullet">
/// <item>refused: what the checkpoint's weights and state mean (data, teacher, student and
/// projector shape, aggregation, losses, seed, batch layout, precision, image size): a resumed run
/// with another teacher or aggregation would silently train something else;</item>
/// <item>allowed with a warning and recorded in config.yaml's history: the schedule and loss
/// weights (epochs, lr, blr, min-lr, warmup-epochs, weight-decay, clip-grad, weight-*);</item>
/// <item>allowed silently: how the run is executed (workers, threads, device, logging, checkpoint
/// cadence, keep).</item>
/// </list>
/// Also: --resume on a folder with no config.yaml and no checkpoint says that it starts afresh.
/// </summary>
public static class ResumeSettings
{
    /// <summary>Keys that may change silently: they do not change what is computed.</summary>
    public static readonly IReadOnlySet<string> Free = new HashSet<string>(StringComparer.Ordinal)
    {
        "workers", "threads", "device", "log-every", "checkpoint-every", "keep", "keep-checkpoints", "resume", "out", "tensorboard",
        "max-image-pixels", "max-checkpoint-inflate", "cache", "cache-dir", "quiet",
    };

    /// <summary>Keys that may change with a warning (the schedule and the loss weights).</summary>
    public static bool Warned(string key) =>
        key is "epochs" or "lr" or "blr" or "min-lr" or "warmup-epochs" or "weight-decay" or "clip-grad" or "stop-after-epochs"
        || key.StartsWith("weight-", StringComparison.Ordinal);

    /// <summary>The config text to write: the new settings, with the previous ones' history and this resume's changes appended.</summary>
    public static string Reconcile(string outDir, string config, ParseResult parsed, Action<string> warn)
    {
        if (parsed.CommandResult.Command.Options.FirstOrDefault(o => o.Name == "--resume") is not Option<bool> resume || !parsed.GetValue(resume))
            return config;
        string path = Path.Combine(outDir, "config.yaml");
        bool anyCheckpoint = Directory.Exists(outDir) && Directory.EnumerateFiles(outDir, "checkpoint-*.ckpt").Any();
        if (!File.Exists(path))
        {
            if (!anyCheckpoint) warn($"--resume: {outDir} holds no config.yaml and no checkpoint: starting a new run there.");
            return config;
        }
        string old = File.ReadAllText(path);
        var before = Parse(old);
        var after = Parse(config);
        var refused = new List<string>();
        var changed = new List<string>();
        foreach (var (key, value) in after)
        {
            if (Free.Contains(key)) continue;
            if (!before.TryGetValue(key, out string? was)) continue;   // a setting older runs did not record
            if (was == value) continue;
            string change = $"{key}: {Short(was)} -> {Short(value)}";
            if (Warned(key)) changed.Add(change); else refused.Add(change);
        }
        if (refused.Count > 0)
            throw new ArgumentException(
                $"--resume: {string.Join("; ", refused.Take(6))}{(refused.Count > 6 ? $" (and {refused.Count - 6} more)" : "")} since the run in {outDir} started (its config.yaml); " +
                "a resumed run must keep these (see --help of --resume): put them back, or start a new run in another --out.");
        foreach (string c in changed) warn($"--resume with a changed setting: {c} (recorded in config.yaml's history)");
        // History: what came before, then what this resume changed; the settings above are the current ones.
        var history = old.Split('\n').Where(l => l.StartsWith("# history:", StringComparison.Ordinal)).ToList();
        string first = old.Split('\n').FirstOrDefault(l => l.StartsWith("# attndistill", StringComparison.Ordinal)) ?? "# (first run)";
        if (history.Count == 0) history.Add($"# history: started as {first.TrimStart('#', ' ')}");
        history.Add($"# history: resumed {DateTime.UtcNow:yyyy-MM-dd HH:mm:ss}Z" + (changed.Count > 0 ? $", changed {string.Join("; ", changed)}" : ", no setting changed"));
        return config + string.Join('\n', history) + "\n";
    }

    static string Short(string s) => s.Length <= 120 ? s : s[..117] + "...";

    /// <summary>"key: value" lines of a resolved config (comments skipped).</summary>
    static Dictionary<string, string> Parse(string text)
    {
        var d = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (string line in text.Split('\n'))
        {
            if (line.StartsWith('#') || line.Length == 0) continue;
            int colon = line.IndexOf(": ", StringComparison.Ordinal);
            if (colon > 0) d[line[..colon]] = line[(colon + 2)..].Trim();
        }
        return d;
    }
}
