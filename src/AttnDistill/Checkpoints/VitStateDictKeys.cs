using System.Text.RegularExpressions;
using AttnDistill.Models;

namespace AttnDistill.Checkpoints;

/// <summary>
/// The parameter names of a DINO/timm Vision Transformer backbone (docs/METHOD.md, section 2.1), their
/// canonical order (timm's state_dict order) and their shapes for a given configuration.
/// </summary>
public static partial class VitStateDictKeys
{
    static readonly string[] TopBefore = { "cls_token", "pos_embed", "patch_embed.proj.weight", "patch_embed.proj.bias" };
    static readonly string[] BlockParts =
    {
        "norm1.weight", "norm1.bias", "attn.qkv.weight", "attn.qkv.bias", "attn.proj.weight", "attn.proj.bias",
        "norm2.weight", "norm2.bias", "mlp.fc1.weight", "mlp.fc1.bias", "mlp.fc2.weight", "mlp.fc2.bias",
    };
    static readonly string[] TopAfter = { "norm.weight", "norm.bias" };

    /// <summary>Tensors that belong to a ViT variant this project does not implement (loading without them would be wrong).</summary>
    static readonly string[] UnsupportedTop = { "dist_token", "reg_token", "register_tokens" };

    [GeneratedRegex(@"^blocks\.(\d+)\.(.+)$")]
    private static partial Regex BlockKey();

    /// <summary>True for a name in the backbone set (any block index).</summary>
    public static bool IsBackboneKey(string key)
    {
        if (TopBefore.Contains(key) || TopAfter.Contains(key)) return true;
        var m = BlockKey().Match(key);
        return m.Success && BlockParts.Contains(m.Groups[2].Value);
    }

    /// <summary>
    /// True for a name that belongs inside the backbone but is not a tensor our ViT has (layer scale
    /// gammas, BEiT's q/v biases, distillation or register tokens): such a checkpoint must not load silently.
    /// </summary>
    public static bool IsUnsupportedBackboneKey(string key)
        => UnsupportedTop.Contains(key) || (key.StartsWith("blocks.", StringComparison.Ordinal) && !IsBackboneKey(key));

    /// <summary>The block index of a "blocks.{i}.*" key, or null.</summary>
    public static int? BlockIndex(string key)
    {
        var m = BlockKey().Match(key);
        return m.Success && int.TryParse(m.Groups[1].Value, out int i) ? i : null;
    }

    /// <summary>Sort key giving timm's order: cls_token, pos_embed, patch_embed, blocks in index order, norm; other names last.</summary>
    public static (int Group, int Block, int Part, string Name) OrderKey(string key)
    {
        int top = Array.IndexOf(TopBefore, key);
        if (top >= 0) return (0, 0, top, key);
        var m = BlockKey().Match(key);
        if (m.Success && int.TryParse(m.Groups[1].Value, out int b))
        {
            int part = Array.IndexOf(BlockParts, m.Groups[2].Value);
            return (1, b, part < 0 ? BlockParts.Length : part, key);
        }
        int after = Array.IndexOf(TopAfter, key);
        if (after >= 0) return (2, 0, after, key);
        return (3, 0, 0, key);
    }

    /// <summary>Names in canonical order.</summary>
    public static IEnumerable<string> Ordered(IEnumerable<string> keys) => keys.OrderBy(OrderKey);

    /// <summary>Every backbone tensor name and shape a model built from <paramref name="cfg"/> has, in canonical order.</summary>
    public static IReadOnlyList<(string Name, long[] Shape)> ExpectedShapes(VitConfig cfg)
    {
        long d = cfg.EmbedDim, p = cfg.PatchSize, h = cfg.MlpHiddenDim;
        var list = new List<(string, long[])>
        {
            ("cls_token", new[] { 1L, 1, d }),
            ("pos_embed", new[] { 1L, 1 + cfg.NumPatches, d }),
            ("patch_embed.proj.weight", new[] { d, cfg.InChans, p, p }),
            ("patch_embed.proj.bias", new[] { d }),
        };
        for (int i = 0; i < cfg.Depth; i++)
        {
            string b = $"blocks.{i}.";
            list.Add((b + "norm1.weight", new[] { d }));
            list.Add((b + "norm1.bias", new[] { d }));
            list.Add((b + "attn.qkv.weight", new[] { 3 * d, d }));
            if (cfg.QkvBias) list.Add((b + "attn.qkv.bias", new[] { 3 * d }));
            list.Add((b + "attn.proj.weight", new[] { d, d }));
            list.Add((b + "attn.proj.bias", new[] { d }));
            list.Add((b + "norm2.weight", new[] { d }));
            list.Add((b + "norm2.bias", new[] { d }));
            list.Add((b + "mlp.fc1.weight", new[] { h, d }));
            list.Add((b + "mlp.fc1.bias", new[] { h }));
            list.Add((b + "mlp.fc2.weight", new[] { d, h }));
            list.Add((b + "mlp.fc2.bias", new[] { d }));
        }
        list.Add(("norm.weight", new[] { d }));
        list.Add(("norm.bias", new[] { d }));
        return list;
    }

    /// <summary>"[1, 197, 384]".</summary>
    public static string ShapeText(IEnumerable<long> shape) => "[" + string.Join(", ", shape) + "]";
}
