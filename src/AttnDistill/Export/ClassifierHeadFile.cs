using System.Collections;
using AttnDistill.Checkpoints;
using static TorchSharp.torch;

namespace AttnDistill.Export;

/// <summary>
/// Reads a linear classification head from a .safetensors or torch.save .pth state dict. Names are
/// matched by role, not by one fixed table, so the heads we write and the usual PyTorch ones load:
/// the only 2-D tensor is the Linear weight (<c>weight</c>, <c>1.weight</c> of MAE's
/// Sequential(BatchNorm1d, Linear) as in <see cref="Evaluation.LinearProbeHead"/>, <c>fc.weight</c>,
/// ...) and its sibling <c>bias</c> the bias; a <c>*running_mean</c> / <c>*running_var</c> pair
/// (<c>bn.running_*</c> or <c>0.running_*</c>) is a BatchNorm in eval mode, with its affine
/// <c>weight</c>/<c>bias</c> if present. Prefixes <c>module.</c> and <c>head.</c> are stripped; in a
/// whole-model state dict only the <c>head.*</c> tensors are read.
/// </summary>
public static class ClassifierHeadFile
{
    static readonly string[] Wrappers = { "model", "state_dict" };

    public static ClassifierHead Read(string path, double bnEps = ClassifierHead.DefaultBnEps)
    {
        if (!File.Exists(path))
            throw new FileNotFoundException($"--head {path}: file not found. Pass the head's state dict (.safetensors or .pth with weight/bias, e.g. from linear probing), or leave --head out.", path);
        var tensors = ReadTensors(path);
        try
        {
            return FromStateDict(tensors, path, bnEps);
        }
        finally
        {
            foreach (var t in tensors.Values) t.Dispose();
        }
    }

    static Dictionary<string, Tensor> ReadTensors(string path)
    {
        switch (CheckpointReader.DetectFormat(path))
        {
            case CheckpointFormat.Safetensors:
                return SafetensorsFile.Read(path).Tensors;
            case CheckpointFormat.PyTorchZip:
            {
                IDictionary root = CheckpointReader.ReadPickle(path);
                var flat = new Dictionary<string, Tensor>(StringComparer.Ordinal);
                Flatten(root, "", flat);
                // A wrapper ({"model": {...}}) holds the head one level down.
                foreach (var w in Wrappers)
                {
                    string prefix = w + ".";
                    if (flat.Keys.All(k => k.StartsWith(prefix, StringComparison.Ordinal)) && flat.Count > 0)
                        flat = flat.ToDictionary(kv => kv.Key[prefix.Length..], kv => kv.Value, StringComparer.Ordinal);
                }
                return flat;
            }
            default:
                throw new CheckpointFormatException($"--head {path}: not a .safetensors file nor a torch.save .pth archive. Save the head with torch.save(head.state_dict(), p) or as .safetensors.");
        }
    }

    static void Flatten(IDictionary dict, string prefix, Dictionary<string, Tensor> into)
    {
        foreach (DictionaryEntry e in dict)
        {
            string key = prefix + e.Key;
            switch (e.Value)
            {
                case Tensor t: into[key] = t; break;
                case IDictionary d: Flatten(d, key + ".", into); break;
            }
        }
    }

    /// <summary>Picks the head's tensors out of a state dict by role (copies them; the caller keeps <paramref name="stateDict"/>).</summary>
    public static ClassifierHead FromStateDict(IReadOnlyDictionary<string, Tensor> stateDict, string source = "head", double bnEps = ClassifierHead.DefaultBnEps)
    {
        var keys = stateDict.Keys.Select(k => (Original: k, Name: Strip(k, "module."))).ToList();
        // A whole model (backbone + head): keep the head.
        if (keys.Any(k => k.Name.StartsWith("head.", StringComparison.Ordinal)))
            keys = keys.Where(k => k.Name.StartsWith("head.", StringComparison.Ordinal)).ToList();
        keys = keys.Select(k => (k.Original, Name: Strip(k.Name, "head.")))
                   .Where(k => !k.Name.EndsWith("num_batches_tracked", StringComparison.Ordinal)).ToList();
        var byName = keys.ToDictionary(k => k.Name, k => k.Original, StringComparer.Ordinal);
        string found = string.Join(", ", stateDict.Select(kv => $"{kv.Key} {VitStateDictKeys.ShapeText(kv.Value.shape)}"));

        var matrices = keys.Where(k => stateDict[k.Original].dim() == 2).ToList();
        if (matrices.Count != 1)
            throw new CheckpointFormatException(
                $"--head {source}: expected exactly one 2-D tensor (the Linear weight, classes x features), found {matrices.Count}: {found}. " +
                "Pass a linear head's state dict with weight and bias (and optionally bn.running_mean / bn.running_var).");
        string linear = Prefix(matrices[0].Name);
        var used = new HashSet<string>(StringComparer.Ordinal) { matrices[0].Name };
        var roles = new Dictionary<string, string>(StringComparer.Ordinal) { ["weight"] = matrices[0].Original };

        Tensor? Take(string name, string role)
        {
            if (!byName.TryGetValue(name, out var original)) return null;
            used.Add(name);
            roles[role] = original;
            return stateDict[original];
        }

        var weight = stateDict[matrices[0].Original];
        var bias = Take(linear + "bias", "bias");
        var means = keys.Where(k => k.Name.EndsWith("running_mean", StringComparison.Ordinal)).ToList();
        if (means.Count > 1)
            throw new CheckpointFormatException($"--head {source}: more than one BatchNorm (running_mean) in the head: {found}. Only BatchNorm -> Linear heads are exported.");
        Tensor? mean = null, var_ = null, bnW = null, bnB = null;
        if (means.Count == 1)
        {
            string bn = means[0].Name[..^"running_mean".Length];
            mean = Take(bn + "running_mean", "running_mean");
            var_ = Take(bn + "running_var", "running_var")
                   ?? throw new CheckpointFormatException($"--head {source}: {means[0].Original} without {bn}running_var: save the BatchNorm's whole state dict.");
            bnW = Take(bn + "weight", "bn_weight");
            bnB = Take(bn + "bias", "bn_bias");
        }
        var extra = keys.Where(k => !used.Contains(k.Name)).Select(k => k.Original).ToList();
        if (extra.Count > 0)
            throw new CheckpointFormatException($"--head {source}: tensors that are not part of a (BatchNorm ->) Linear head: {string.Join(", ", extra)}. Found: {found}.");

        long classes = weight.shape[0], features = weight.shape[1];
        void Check(Tensor? t, long size, string role)
        {
            if (t is not null && (t.dim() != 1 || t.shape[0] != size))
                throw new CheckpointFormatException($"--head {source}: {roles[role]} has shape {VitStateDictKeys.ShapeText(t.shape)}, expected [{size}] for a {classes} x {features} weight.");
        }
        Check(bias, classes, "bias");
        Check(mean, features, "running_mean");
        Check(var_, features, "running_var");
        Check(bnW, features, "bn_weight");
        Check(bnB, features, "bn_bias");

        static Tensor? Copy(Tensor? t) => t?.detach().to(ScalarType.Float32).clone();
        return new ClassifierHead(Copy(weight)!, Copy(bias), Copy(mean), Copy(var_), Copy(bnW), Copy(bnB), bnEps, roles);
    }

    static string Strip(string key, string prefix) =>
        key.StartsWith(prefix, StringComparison.Ordinal) ? Strip(key[prefix.Length..], prefix) : key;

    static string Prefix(string key) => key.LastIndexOf('.') is var i and >= 0 ? key[..(i + 1)] : "";
}
