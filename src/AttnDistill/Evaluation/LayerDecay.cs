using AttnDistill.Training;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace AttnDistill.Evaluation;

/// <summary>
/// Layer-wise lr decay for fine-tuning (BEiT; MAE's util/lr_decay.py param_groups_lrd): with L
/// blocks, cls_token, pos_embed and patch_embed are layer 0, block i is layer i + 1, everything
/// after the blocks (norm, head) is layer L + 1; a parameter of layer l gets
/// lr scale = decay^(L + 1 - l). Weight decay is off for 1-D tensors (biases, norms) and for
/// pos_embed and cls_token (timm's no_weight_decay list).
/// </summary>
public static class LayerDecay
{
    public static readonly IReadOnlyList<string> NoWeightDecay = new[] { "pos_embed", "cls_token", "dist_token" };

    /// <summary>Layer id of a parameter named as in timm/DINO ViTs (optionally under a prefix like "backbone.").</summary>
    public static int LayerId(string name, int depth)
    {
        string n = name;
        foreach (var prefix in new[] { "backbone.", "encoder.", "module." })
            if (n.StartsWith(prefix, StringComparison.Ordinal)) n = n[prefix.Length..];
        if (n is "cls_token" or "pos_embed" or "dist_token" || n.StartsWith("patch_embed", StringComparison.Ordinal)) return 0;
        if (n.StartsWith("blocks.", StringComparison.Ordinal)) return int.Parse(n.Split('.')[1]) + 1;
        return depth + 1;
    }

    /// <summary>One group per (layer, decay / no decay) that has parameters, trainable only, ordered by layer.</summary>
    public static IReadOnlyList<ParameterGroup> ParameterGroups(nn.Module model, int depth, double weightDecay, double layerDecay)
    {
        if (!(layerDecay > 0 && layerDecay <= 1)) throw new ArgumentException($"layer decay must be in (0, 1], got {layerDecay}.");
        var groups = new SortedDictionary<(int Layer, bool Decay), List<(string, Parameter)>>();
        foreach (var (name, p) in model.named_parameters())
        {
            if (!p.requires_grad) continue;
            string leaf = name.Split('.')[^1];
            bool decay = !(p.dim() == 1 || NoWeightDecay.Contains(leaf) || name.EndsWith(".bias", StringComparison.Ordinal));
            var key = (LayerId(name, depth), decay);
            if (!groups.TryGetValue(key, out var list)) groups[key] = list = new List<(string, Parameter)>();
            list.Add((name, p));
        }
        return groups.Select(kv => new ParameterGroup(
            $"layer_{kv.Key.Layer}_{(kv.Key.Decay ? "decay" : "no_decay")}", kv.Value,
            kv.Key.Decay ? weightDecay : 0.0, Math.Pow(layerDecay, depth + 1 - kv.Key.Layer))).ToArray();
    }
}
