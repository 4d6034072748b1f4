using System.Collections;
using static TorchSharp.torch;

namespace AttnDistill.Checkpoints;

/// <summary>
/// Reads the ViT backbone out of a teacher or student checkpoint as published by DINO, MAE, Mugs,
/// iBOT and timm, or as written by us: torch.save zip archives and safetensors files; plain state
/// dicts or wrapped under model / state_dict / teacher / student; prefixes module. / backbone. /
/// encoder. / _orig_mod. stripped; heads, decoders and non-tensor entries ignored. Nothing in the
/// file is executed: a pickle may name only the globals of <see cref="PickleAllowList"/>.
/// </summary>
public static class CheckpointReader
{
    /// <summary>Wrapper entries tried in this order when the top level holds no backbone tensors (DINO: teacher before student).</summary>
    public static readonly IReadOnlyList<string> WrapperKeys = new[] { "model", "state_dict", "teacher", "student" };

    /// <summary>Key prefixes removed (repeatedly) from every name.</summary>
    public static readonly IReadOnlyList<string> StrippedPrefixes = new[] { "module.", "backbone.", "encoder.", "_orig_mod." };

    static readonly byte[] ZipMagic = { 0x50, 0x4b, 0x03, 0x04 };

    /// <summary>
    /// Reads the backbone. <paramref name="checkpointKey"/> names the wrapper entry to use (e.g.
    /// "student" in a DINO checkpoint, nested as "a/b"); null picks the first of <see cref="WrapperKeys"/>.
    /// </summary>
    /// <param name="keepClassifier">Also keep a fine-tuned classifier's fc_norm.* and head.* (<see cref="BackboneCheckpoint.Classifier"/>),
    /// and accept a global-pool classifier, whose unused final norm is then filled with LayerNorm's identity init (finetune continues from it).</param>
    public static BackboneCheckpoint Read(string path, string? checkpointKey = null, bool keepClassifier = false)
    {
        var format = DetectFormat(path);
        switch (format)
        {
            case CheckpointFormat.PyTorchZip:
            {
                var root = ReadPickle(path);
                return Extract(root, path, format, checkpointKey, config: null, keepClassifier);
            }
            case CheckpointFormat.Safetensors:
                return ReadSafetensors(path, checkpointKey, keepClassifier);
            case CheckpointFormat.PyTorchLegacy:
                throw new CheckpointFormatException(LegacyMessage(path));
            default:
                throw new CheckpointFormatException(
                    $"{path}: not a PyTorch zip checkpoint nor a safetensors file (first bytes {FirstBytesHex(path)}). " +
                    "Save it with torch.save(state_dict, path) or as .safetensors.");
        }
    }

    /// <summary>Recognises the container by its first bytes (not the file name).</summary>
    public static CheckpointFormat DetectFormat(string path)
    {
        CheckpointFileCheck.Require(path);
        using var fs = File.OpenRead(path);
        Span<byte> head = stackalloc byte[9];
        int n = fs.ReadAtLeast(head, head.Length, throwOnEndOfStream: false);
        head = head[..n];
        if (n >= 4 && head[..4].SequenceEqual(ZipMagic)) return CheckpointFormat.PyTorchZip;
        // The legacy format starts with a pickled magic number: PROTO opcode 0x80, then the protocol.
        if (n >= 2 && head[0] == 0x80 && head[1] <= 5) return CheckpointFormat.PyTorchLegacy;
        if (SafetensorsFile.LooksLikeSafetensors(head, fs.Length)) return CheckpointFormat.Safetensors;
        return CheckpointFormat.Unknown;
    }

    /// <summary>
    /// The whole unpickled object of a torch.save zip archive (a Hashtable; tensors on CPU, argparse
    /// Namespace as a <see cref="PythonNamespace"/>, numpy values as <see cref="OpaquePythonObject"/>),
    /// read by <see cref="TorchArchiveReader"/>: globals outside <see cref="PickleAllowList"/> are
    /// refused. The caller owns every tensor in it.
    /// </summary>
    public static Hashtable ReadPickle(string path)
    {
        var format = DetectFormat(path);
        if (format == CheckpointFormat.PyTorchLegacy) throw new CheckpointFormatException(LegacyMessage(path));
        if (format != CheckpointFormat.PyTorchZip)
            throw new CheckpointFormatException($"{path}: not a torch.save zip archive (detected {format}).");
        object? loaded = TorchArchiveReader.Load(path);
        if (loaded is Hashtable table) return table;
        DisposeUnkept(loaded, new HashSet<Tensor>(ReferenceEqualityComparer.Instance), new HashSet<object>(ReferenceEqualityComparer.Instance));
        throw new CheckpointFormatException($"{path}: the checkpoint holds a {(loaded is null ? "None" : loaded is Tensor ? "single tensor" : RestrictedUnpickler.TypeName(loaded))}, not a dict.");
    }

    /// <summary>
    /// The dict-level half of <see cref="Read"/>: picks the wrapper, strips prefixes, keeps backbone
    /// tensors, disposes every other tensor reachable from <paramref name="root"/>.
    /// </summary>
    public static BackboneCheckpoint Extract(IDictionary root, string path, CheckpointFormat format, string? checkpointKey, Models.VitConfig? config, bool keepClassifier = false)
    {
        var kept = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        var keptRefs = new HashSet<Tensor>(ReferenceEqualityComparer.Instance);
        try
        {
            var (current, wrapper) = Unwrap(root, path, checkpointKey);
            var ignored = new List<string>();
            var unsupported = new List<string>();
            var origin = new Dictionary<string, string>(StringComparer.Ordinal);
            var classifier = new Dictionary<string, Tensor>(StringComparer.Ordinal);
            Tensor? fcNorm = null;   // fc_norm.weight: the file is a global-pool classifier when it has no final norm
            foreach (DictionaryEntry e in current)
            {
                string key = e.Key as string ?? e.Key?.ToString() ?? "";
                if (e.Value is not Tensor t)
                {
                    ignored.Add(key);
                    continue;
                }
                string name = StripPrefixes(key);
                if (name == "fc_norm.weight") fcNorm = t;
                if (VitStateDictKeys.IsBackboneKey(name))
                {
                    if (!t.is_floating_point())
                        throw new CheckpointFormatException(
                            $"{path}: backbone tensor '{TerminalText.Safe(key, 80)}' is {t.dtype}; ViT weights are floating point (float32, float16, bfloat16 or float64): not a usable checkpoint (a cast would train on garbage).");
                    if (origin.TryGetValue(name, out string? other))
                        throw new CheckpointFormatException($"{path}: '{other}' and '{key}' both become '{name}' once prefixes are stripped.");
                    origin[name] = key;
                    kept[name] = t;
                    keptRefs.Add(t);
                }
                else if (VitStateDictKeys.IsUnsupportedBackboneKey(name)) unsupported.Add(key);
                else if (keepClassifier && name is "fc_norm.weight" or "fc_norm.bias" or "head.weight" or "head.bias" && t.is_floating_point())
                {
                    classifier[name] = t;
                    keptRefs.Add(t);
                }
                else ignored.Add(key);
            }
            if (unsupported.Count > 0)
                throw new CheckpointFormatException(
                    $"{path}: the backbone has tensors this ViT does not implement: {string.Join(", ", unsupported.Take(8))}" +
                    $"{(unsupported.Count > 8 ? $" ... ({unsupported.Count} in all)" : "")} (layer scale, distillation or register tokens?).");
            bool globalPool = kept.Count > 0 && !kept.ContainsKey("norm.weight") && fcNorm is not null;
            if (keepClassifier && globalPool && fcNorm!.is_floating_point())
            {
                // A global-pool classifier never reads the final norm (MAE deletes it): LayerNorm's own init stands in, so the ViT loads strictly.
                kept["norm.weight"] = ones_like(fcNorm!);
                kept["norm.bias"] = zeros_like(fcNorm!);
                keptRefs.Add(kept["norm.weight"]);
                keptRefs.Add(kept["norm.bias"]);
            }
            else if (globalPool)
                throw new CheckpointFormatException(
                    $"{path}: a classifier fine-tuned with global pooling (MAE main_finetune / timm: fc_norm.* and head.*, no final norm.*): " +
                    "its feature is the mean patch token through fc_norm, not the normalized CLS token this backbone gives, so it cannot be read as a backbone. " +
                    "For knn, linear, distill and visualize pass the pre-trained checkpoint it was fine-tuned from (MAE: mae_pretrain_vit_*.pth, --teacher mae_vitb16); finetune --global-pool continues from it.");
            if (kept.Count == 0)
            {
                string where = wrapper is null ? "at the top level" : $"under '{wrapper}'";
                var present = WrapperKeys.Where(k => current.Contains(k) || root.Contains(k)).ToList();
                throw new CheckpointFormatException(
                    $"{path}: no ViT backbone tensors {where}; keys there: {KeyList(current)}." +
                    (present.Count > 0 ? $" Wrapper entries present: {string.Join(", ", present)}: choose one as the checkpoint key." : ""));
            }
            var ordered = new Dictionary<string, Tensor>(kept.Count, StringComparer.Ordinal);
            foreach (string k in VitStateDictKeys.Ordered(kept.Keys)) ordered[k] = kept[k];
            return new BackboneCheckpoint
            {
                Path = path, Format = format, Tensors = ordered, WrapperKey = wrapper, IgnoredKeys = ignored, Config = config, Classifier = classifier,
            };
        }
        catch
        {
            keptRefs.Clear();
            throw;
        }
        finally
        {
            DisposeUnkept(root, keptRefs, new HashSet<object>(ReferenceEqualityComparer.Instance));
        }
    }

    /// <summary>Removes the known wrapper prefixes from the front of a name, repeatedly ("module.backbone.x" -> "x").</summary>
    public static string StripPrefixes(string key)
    {
        bool again = true;
        while (again)
        {
            again = false;
            foreach (string p in StrippedPrefixes)
            {
                if (key.StartsWith(p, StringComparison.Ordinal) && key.Length > p.Length)
                {
                    key = key[p.Length..];
                    again = true;
                }
            }
        }
        return key;
    }

    static (IDictionary Dict, string? Wrapper) Unwrap(IDictionary root, string path, string? checkpointKey)
    {
        IDictionary current = root;
        if (checkpointKey is not null)
        {
            foreach (string part in checkpointKey.Split('/', StringSplitOptions.RemoveEmptyEntries))
            {
                if (!current.Contains(part) || current[part] is not IDictionary d)
                    throw new CheckpointFormatException(
                        $"{path}: no dict entry '{part}' (checkpoint key '{checkpointKey}'); keys there: {KeyList(current)}.");
                current = d;
            }
            return (current, checkpointKey);
        }
        string? wrapper = null;
        for (int level = 0; level < 4 && !HasBackboneTensor(current); level++)
        {
            string? next = WrapperKeys.FirstOrDefault(k => current.Contains(k) && current[k] is IDictionary);
            if (next is null) break;
            current = (IDictionary)current[next]!;
            wrapper = wrapper is null ? next : wrapper + "/" + next;
        }
        return (current, wrapper);
    }

    static bool HasBackboneTensor(IDictionary d)
    {
        foreach (DictionaryEntry e in d)
            if (e.Value is Tensor && e.Key is string k && VitStateDictKeys.IsBackboneKey(StripPrefixes(k)))
                return true;
        return false;
    }

    // Iterative: an untrusted pickle can nest containers deeper than the stack, or make them cyclic.
    static void DisposeUnkept(object? root, HashSet<Tensor> kept, HashSet<object> seen)
    {
        var todo = new Stack<object?>();
        todo.Push(root);
        while (todo.Count > 0)
        {
            object? node = todo.Pop();
            if (node is null || !seen.Add(node)) continue;
            switch (node)
            {
                case Tensor t:
                    if (!kept.Contains(t)) t.Dispose();
                    break;
                case IDictionary d:
                    foreach (DictionaryEntry e in d) todo.Push(e.Value);
                    break;
                case string or byte[]:
                    break;
                case OpaquePythonObject o:
                    foreach (object? a in o.Args) todo.Push(a);
                    todo.Push(o.State);
                    break;
                case IEnumerable list:
                    foreach (object? o in list) todo.Push(o);
                    break;
            }
        }
    }

    static BackboneCheckpoint ReadSafetensors(string path, string? checkpointKey, bool keepClassifier)
    {
        var contents = SafetensorsFile.Read(path);
        var meta = contents.Metadata;
        Models.VitConfig? config = meta.TryGetValue(CheckpointMetadata.VitConfig, out string? json) ? VitConfigJson.Deserialize(json, path) : null;
        var root = new Hashtable();
        if (meta.TryGetValue(CheckpointMetadata.Kind, out string? kind) && kind == CheckpointMetadata.KindTraining && checkpointKey is null)
        {
            // Our training checkpoint: the model's tensors are "model/<name>".
            checkpointKey = TrainingCheckpoint.ModelSection;
        }
        if (checkpointKey is not null)
        {
            var sub = new Hashtable();
            string prefix = checkpointKey.TrimEnd('/') + "/";
            foreach (var (k, t) in contents.Tensors)
            {
                if (k.StartsWith(prefix, StringComparison.Ordinal)) sub[k[prefix.Length..]] = t;
                else root[k] = t;
            }
            root[checkpointKey.TrimEnd('/')] = sub;
        }
        else
        {
            foreach (var (k, t) in contents.Tensors) root[k] = t;
        }
        return Extract(root, path, CheckpointFormat.Safetensors, checkpointKey?.TrimEnd('/'), config, keepClassifier);
    }

    static string LegacyMessage(string path) =>
        $"{path}: saved in PyTorch's legacy (pre-1.6, non-zip) format, which cannot be read here. Convert it once in Python: " +
        $"import torch; torch.save(torch.load(p, map_location='cpu'), p2, _use_new_zipfile_serialization=True)";

    static string KeyList(IDictionary d)
    {
        var keys = d.Keys.Cast<object>().Select(k => k?.ToString() ?? "").ToList();
        return keys.Count == 0 ? "none" : string.Join(", ", keys.Take(10)) + (keys.Count > 10 ? $", ... ({keys.Count} in all)" : "");
    }

    static string FirstBytesHex(string path)
    {
        using var fs = File.OpenRead(path);
        var b = new byte[8];
        int n = fs.ReadAtLeast(b, b.Length, throwOnEndOfStream: false);
        return n == 0 ? "(empty file)" : Convert.ToHexString(b, 0, n);
    }
}
