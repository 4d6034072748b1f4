using System.Security.Cryptography;
using System.Text.Json;
using AttnDistill.Checkpoints;
using static TorchSharp.torch;

namespace AttnDistill.Tests.Reliability;

/// <summary>
/// Crafted-but-valid training checkpoints: one section or field of a real trainer checkpoint
/// changed and the data checksum recomputed, so the file passes every format check and its
/// contents reach <c>--resume</c>: a section missing, a section that is not JSON, an RNG state of
/// the wrong size, positions negative, past the end or near 2^62, optimizer, scheduler and model
/// sections that do not fit. The checksum proves only that the bytes are the ones written, by
/// whoever wrote them.
/// </summary>
public sealed class CraftedCheckpoints : IDisposable
{
    public static readonly string[] Kinds =
    {
        "ck-no-section", "ck-section-not-json", "ck-section-list", "ck-rng", "ck-epoch", "ck-step", "ck-optimizer", "ck-scheduler",
        "ck-model", "ck-vit-config", "ck-orphan-tensor", "ck-valid-mid-epoch",
    };

    readonly List<KeyValuePair<string, Tensor>> _tensors;
    readonly Dictionary<string, string> _meta;

    /// <summary>Reads a trainer-written checkpoint once; its tensors stay untouched (edits replace them in a copy).</summary>
    public CraftedCheckpoints(string seedCheckpoint)
    {
        var c = SafetensorsFile.Read(seedCheckpoint);
        _tensors = c.Tensors.ToList();
        _meta = new Dictionary<string, string>(c.Metadata, StringComparer.Ordinal);
    }

    public (string Kind, byte[] Bytes) Mutate(Random rng)
    {
        using var scope = NewDisposeScope();
        var tensors = _tensors.ToList();
        var meta = new Dictionary<string, string>(_meta, StringComparer.Ordinal);
        var sections = JsonSerializer.Deserialize<Dictionary<string, string>>(meta["attndistill.sections"])!;
        string kind = Kinds[rng.Next(Kinds.Length)];
        T Of<T>(params T[] options) => options[rng.Next(options.Length)];
        void Set(string key, Tensor t)
        {
            int at = tensors.FindIndex(kv => kv.Key == key);
            if (at >= 0) tensors[at] = new(key, t); else tensors.Add(new(key, t));
        }
        void RemoveOwner(string owner) => tensors.RemoveAll(kv => kv.Key.StartsWith(owner + "/", StringComparison.Ordinal));
        Tensor Get(string key) => tensors.First(kv => kv.Key == key).Value;
        var modelKeys = tensors.Where(kv => kv.Key.StartsWith("model/", StringComparison.Ordinal)).Select(kv => kv.Key).ToList();

        switch (kind)
        {
            case "ck-no-section":
            {
                string which = Of("optimizer", "scheduler", "rng", "model", "sections", "optimizer-json-only");
                if (which == "sections") meta.Remove("attndistill.sections");
                else if (which == "model") RemoveOwner("model");
                else if (which == "optimizer-json-only") RemoveOwner("optimizer");
                else { sections.Remove(which); RemoveOwner(which); }
                break;
            }
            case "ck-section-not-json":
                sections[Of("optimizer", "scheduler", "rng")] = Of("this is { not json", "", "{", "\u0001\u0002\u001b[2J", new string('[', 5000) + new string(']', 5000),
                    "{\"a\":1}{\"b\":2}", "\"just a string\"", "null", "[1,2,3]", "{\"optimizer_steps\":1e400}");
                break;
            case "ck-section-list":
                meta["attndistill.sections"] = Of("[]", "null", "{\"optimizer\":1}", "{\"optimizer\":null}", "{\"a/b\":\"{}\"}", "{\"\":\"{}\"}", "{\"model\":\"{}\"}", "{", "\"x\"",
                    "{\"optimizer\":{\"type\":\"AdamW\"}}");
                break;
            case "ck-rng":
            {
                long n = Get("rng/torch_cpu").shape[0];
                var state = rng.Next(7) switch
                {
                    0 => zeros(10, ScalarType.Byte),
                    1 => zeros(0, ScalarType.Byte),
                    2 => zeros(n + 1, ScalarType.Byte),
                    3 => zeros(n, ScalarType.Float32),
                    4 => zeros(2, n / 2, ScalarType.Byte),
                    5 => Get("rng/torch_cpu").narrow(0, 0, n - 8).clone(),
                    _ => Get("rng/torch_cpu").reshape(1, n).clone(),
                };
                Set("rng/torch_cpu", state);
                break;
            }
            case "ck-epoch":
                meta["attndistill.epoch"] = Of("-1", "-2147483648", "2", "5", "2147483647", "4611686018427387904", "1e3", "", " 1", "+1", "0x10", "\u0661", "1.0");
                break;
            case "ck-step":
                meta["attndistill.step"] = Of("-1", "3", "4", "5", "1000", "4611686018427387904", "9223372036854775807", "9223372036854775808", "2147483648", "1", "2");
                if (rng.Next(3) == 0) meta["attndistill.epoch"] = Of("0", "1");
                break;
            case "ck-optimizer":
            {
                var real = Get("optimizer/torchsharp_state");
                switch (rng.Next(9))
                {
                    case 0: Set("optimizer/torchsharp_state", full(64, 7, ScalarType.Byte)); break;
                    case 1: Set("optimizer/torchsharp_state", real.narrow(0, 0, rng.NextInt64(real.shape[0])).clone()); break;
                    case 2:
                    {
                        var flipped = real.data<byte>().ToArray();
                        flipped[rng.Next(flipped.Length)] ^= (byte)(1 << rng.Next(8));
                        Set("optimizer/torchsharp_state", tensor(flipped));
                        break;
                    }
                    case 3: Set("optimizer/torchsharp_state", real.to(ScalarType.Float32)); break;
                    case 4: Set("optimizer/torchsharp_state", real.reshape(1, -1).clone()); break;
                    case 5: tensors.RemoveAll(kv => kv.Key == "optimizer/torchsharp_state"); break;
                    case 6: sections["optimizer"] = Of("{\"type\":\"SGD\"}", "{\"type\":7}", "{}", "[]", "{\"type\":\"\\u001b[2J\"}"); break;
                    case 7:
                    {
                        // Real bytes with a length field inside them made huge: what a crafted file would do to the state reader.
                        var bytes = real.data<byte>().ToArray();
                        int at = rng.Next(Math.Max(1, bytes.Length - 8));
                        BitConverter.TryWriteBytes(bytes.AsSpan(at), rng.Next(2) == 0 ? long.MaxValue : (long)int.MaxValue);
                        Set("optimizer/torchsharp_state", tensor(bytes));
                        break;
                    }
                    default: Set("optimizer/torchsharp_state", zeros(0, ScalarType.Byte)); break;
                }
                break;
            }
            case "ck-scheduler":
            {
                var s = JsonSerializer.Deserialize<Dictionary<string, JsonElement>>(sections["scheduler"])!
                    .ToDictionary(kv => kv.Key, kv => (object)kv.Value);
                string key = Of("optimizer_steps", "accumulation", "world_size", "batch_size", "batches_per_epoch", "peak_lr");
                if (rng.Next(6) == 0) s.Remove(key);
                else s[key] = Of<object>(-1, 0, 3, 1000, 4611686018427387904L, 2147483648L, "x", 1.5, double.MaxValue, false);
                sections["scheduler"] = JsonSerializer.Serialize(s);
                break;
            }
            case "ck-model":
            {
                string k = modelKeys[rng.Next(modelKeys.Count)];
                var t = Get(k);
                switch (rng.Next(7))
                {
                    case 0: tensors.RemoveAll(kv => kv.Key == k); break;
                    case 1: Set("model/extra.weight", zeros(3)); break;
                    case 2: Set(k, zeros(t.shape.Select(d => d + 1).ToArray())); break;
                    case 3: Set(k, t.to(ScalarType.Int32)); break;
                    case 4: Set(k, t.to(ScalarType.Float64)); break;
                    case 5: Set(k, t.reshape(-1).clone()); break;
                    default: tensors.RemoveAll(kv => kv.Key == k); Set(k + "_renamed", t); break;
                }
                break;
            }
            case "ck-vit-config":
                meta[CheckpointMetadata.VitConfig] = Of("{", "[]", "{\"depth\":100}", "{\"ImageSize\":-8}", "{\"EmbedDim\":7,\"NumHeads\":2}", "null", "{\"PatchSize\":0}",
                    "{\"ImageSize\":8,\"PatchSize\":4,\"EmbedDim\":8,\"Depth\":2147483647,\"NumHeads\":2}");
                break;
            case "ck-orphan-tensor":
                Set(Of("nosuch/x", "plain", "/x", "model/", "optimizer/"), zeros(2));
                break;
            default:
                // Honest positions inside the epoch: these must resume.
                meta["attndistill.epoch"] = Of("0", "1");
                meta["attndistill.step"] = Of("1", "2", "3");
                break;
        }
        if (kind != "ck-section-list" && meta.ContainsKey("attndistill.sections")) meta["attndistill.sections"] = JsonSerializer.Serialize(sections);
        return (kind, Write(tensors, meta));
    }

    /// <summary>The file with its data checksum recomputed over the tensors in the order they are written.</summary>
    static byte[] Write(List<KeyValuePair<string, Tensor>> tensors, Dictionary<string, string> meta)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var contiguous = tensors.Select(kv => new KeyValuePair<string, Tensor>(kv.Key, kv.Value.contiguous())).ToList();
        foreach (var (_, t) in contiguous)
            if (t.NumberOfElements > 0) sha.AppendData(t.bytes);
        meta["attndistill.data_sha256"] = Convert.ToHexStringLower(sha.GetHashAndReset());
        var ms = new MemoryStream();
        SafetensorsFile.Write(ms, contiguous, meta);
        return ms.ToArray();
    }

    public void Dispose()
    {
        foreach (var (_, t) in _tensors) t.Dispose();
    }
}
