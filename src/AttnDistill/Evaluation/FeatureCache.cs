using System.Collections;
using System.Security.Cryptography;
using System.Text;
using AttnDistill.Checkpoints;
using TorchSharp.PyBridge;
using static TorchSharp.torch;

namespace AttnDistill.Evaluation;

/// <summary>
/// Features computed once per (checkpoint file, data split, image size, extra): a torch .pt file
/// (flat dict "features", "labels", "indices", loadable with torch.load in Python) in a cache
/// folder. The key hashes the checkpoint's bytes, not its name, so a retrained file at the same
/// path is not mistaken for the old one.
/// </summary>
public sealed class FeatureCache
{
    public FeatureCache(string directory) => Directory = directory;

    public string Directory { get; }

    /// <summary>
    /// "{split}-{imageSize}px-{hash}": hash = SHA-256 of the checkpoint file and of
    /// <paramref name="extra"/> (what else changes the features: data root, evaluated layer ...),
    /// first 16 hex digits.
    /// </summary>
    public static string Key(string checkpointPath, string split, int imageSize, string? extra = null)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        // The pixel floor has no file: its name is its identity.
        if (EvaluatedBackbone.IsPixels(checkpointPath)) sha.AppendData(Encoding.UTF8.GetBytes("identity backbone: " + checkpointPath));
        else using (var file = File.OpenRead(checkpointPath))
        {
            var buffer = new byte[1 << 20];
            int read;
            while ((read = file.Read(buffer, 0, buffer.Length)) > 0) sha.AppendData(buffer, 0, read);
        }
        sha.AppendData(Encoding.UTF8.GetBytes("\n" + split + "\n" + imageSize + "\n" + (extra ?? "")));
        string hash = Convert.ToHexString(sha.GetHashAndReset())[..16].ToLowerInvariant();
        string safeSplit = string.Concat(split.Select(c => char.IsLetterOrDigit(c) ? c : '_'));
        return $"{safeSplit}-{imageSize}px-{hash}";
    }

    public string PathFor(string key) => Path.Combine(Directory, $"features-{key}.pt");

    public bool Contains(string key) => File.Exists(PathFor(key));

    /// <summary>The cached set, or null when absent; a damaged file is reported, not returned.</summary>
    public FeatureSet? TryLoad(string key)
    {
        string path = PathFor(key);
        if (!File.Exists(path)) return null;
        Hashtable table;
        try { table = CheckpointReader.ReadPickle(path); }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            throw new InvalidDataException($"feature cache {path} cannot be read ({e.Message}); delete it to recompute.", e);
        }
        Tensor Get(string name) => (table[name] as Tensor ?? throw new InvalidDataException($"feature cache {path} has no '{name}'; delete it to recompute."))
            .DetachFromDisposeScope();
        var set = new FeatureSet(Get("features"), Get("labels"), Get("indices"));
        if (set.Features.dim() != 2 || set.Labels.shape[0] != set.Count || set.Indices.shape[0] != set.Count)
        {
            set.Dispose();
            throw new InvalidDataException($"feature cache {path} has inconsistent shapes; delete it to recompute.");
        }
        return set;
    }

    /// <summary>Writes atomically (a crash never leaves a half-written cache entry).</summary>
    public void Save(string key, FeatureSet set)
    {
        var table = new Hashtable
        {
            ["features"] = set.Features.cpu().contiguous(),
            ["labels"] = set.Labels.cpu().contiguous(),
            ["indices"] = set.Indices.cpu().contiguous(),
        };
        AtomicFile.Write(PathFor(key), s => PyTorchPickler.PickleStateDict(s, table, leaveOpen: true));
    }

    /// <summary>The cached features (read to the host, then put on <paramref name="device"/>), or <paramref name="compute"/>'s, which are then cached.</summary>
    public FeatureSet GetOrCompute(string key, Func<FeatureSet> compute, Device? device = null)
    {
        if (TryLoad(key) is { } cached)
        {
            if (device is null || Runs.RunDevice.Same(cached.Features.device, device)) return cached;
            using (cached) return cached.To(device);
        }
        var set = compute();
        Save(key, set);
        return set;
    }
}
