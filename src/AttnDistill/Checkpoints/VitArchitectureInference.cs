using AttnDistill.Models;
using static TorchSharp.torch;

namespace AttnDistill.Checkpoints;

/// <summary>
/// Rebuilds a <see cref="VitConfig"/> from a backbone state dict: width, depth, patch size, input
/// channels and MLP width from the tensors' shapes, the grid (and so the image size) from pos_embed,
/// the position-embedding kind by comparing pos_embed with the 2-D sin-cos table, and the head count
/// from the standard width table (<see cref="VitPresets.StandardHeadsForWidth"/>) unless a preset or
/// an explicit count is given.
/// </summary>
public static class VitArchitectureInference
{
    public static VitConfig Infer(IReadOnlyDictionary<string, Tensor> backbone, VitInferenceOptions? options = null)
    {
        options ??= new VitInferenceOptions();
        var shapes = ShapesOf(backbone);
        var s = ReadShapes(shapes, strict: true);

        PosEmbedKind kind = options.PosEmbed
            ?? (backbone.TryGetValue("pos_embed", out var pe) && s.Width % 4 == 0 && SinCosPosEmbed.Matches(pe)
                ? PosEmbedKind.SinCos : PosEmbedKind.Learnable);

        int heads;
        if (options.NumHeads is int h) heads = h;
        else if (options.Preset is { } preset) heads = preset.NumHeads;
        else if (s.Width <= int.MaxValue && VitPresets.StandardHeadsForWidth((int)s.Width) is int std) heads = std;
        else
            throw new ArgumentException(
                $"cannot infer the number of attention heads: width {s.Width} is not a standard ViT width " +
                $"(192: 3 heads, 384: 6, 768: 12, 1024: 16, 1280: 16). Pass the head count explicitly (--heads) or a preset.");

        var baseCfg = options.Preset ?? new VitConfig();
        if (options.Preset is { } p)
        {
            var diffs = new List<string>();
            if (p.EmbedDim != s.Width) diffs.Add($"width {s.Width} (preset {p.EmbedDim})");
            if (p.Depth != s.Depth) diffs.Add($"depth {s.Depth} (preset {p.Depth})");
            if (p.PatchSize != s.Patch) diffs.Add($"patch {s.Patch} (preset {p.PatchSize})");
            if (p.InChans != s.InChans) diffs.Add($"{s.InChans} input channels (preset {p.InChans})");
            if (p.MlpHiddenDim != s.MlpHidden) diffs.Add($"MLP width {s.MlpHidden} (preset {p.MlpHiddenDim})");
            if (diffs.Count > 0)
                throw new ArgumentException($"the checkpoint does not match the preset: {string.Join(", ", diffs)}. The checkpoint is: {Describe(shapes)}.");
        }

        var cfg = baseCfg with
        {
            EmbedDim = (int)s.Width,
            Depth = s.Depth,
            NumHeads = heads,
            PatchSize = s.Patch,
            InChans = s.InChans,
            ImageSize = s.Grid * s.Patch,
            MlpRatio = (double)s.MlpHidden / s.Width,
            QkvBias = s.QkvBias,
            PosEmbed = kind,
        };
        if (cfg.MlpHiddenDim != s.MlpHidden)
            throw new ArgumentException($"MLP width {s.MlpHidden} is not a whole multiple of width {s.Width} that the config can express.");
        return cfg.Validate();
    }

    /// <summary>
    /// One line saying what architecture the tensors fit, for error messages, e.g.
    /// "width 384, depth 12, patch 8, 3 input channels, MLP 1536, pos_embed has 785 tokens: patch 8 at 224 (grid 28)".
    /// Never throws: unknown parts are left out.
    /// </summary>
    public static string Describe(IReadOnlyDictionary<string, long[]> shapes)
    {
        var s = ReadShapes(shapes, strict: false);
        var parts = new List<string>();
        if (s.Width > 0) parts.Add($"width {s.Width}");
        if (s.Depth > 0) parts.Add($"depth {s.Depth}");
        if (s.Patch > 0) parts.Add($"patch {s.Patch}");
        if (s.InChans > 0) parts.Add($"{s.InChans} input channel{(s.InChans == 1 ? "" : "s")}");
        if (s.MlpHidden > 0) parts.Add($"MLP {s.MlpHidden}");
        if (s.Tokens > 0)
        {
            string pe = $"pos_embed has {s.Tokens} tokens";
            if (s.Grid > 0 && s.Patch > 0) pe += $": patch {s.Patch} at {s.Grid * s.Patch} (grid {s.Grid})";
            else if (s.Grid > 0) pe += $": grid {s.Grid}";
            else pe += " (not 1 CLS + a square grid)";
            parts.Add(pe);
        }
        return parts.Count == 0 ? "no ViT backbone tensors" : string.Join(", ", parts);
    }

    public static string Describe(IReadOnlyDictionary<string, Tensor> tensors) => Describe(ShapesOf(tensors));

    public static Dictionary<string, long[]> ShapesOf(IReadOnlyDictionary<string, Tensor> tensors)
        => tensors.ToDictionary(kv => kv.Key, kv => kv.Value.shape, StringComparer.Ordinal);

    sealed record Shapes(long Width, int Depth, int Patch, int InChans, long MlpHidden, long Tokens, int Grid, bool QkvBias);

    static Shapes ReadShapes(IReadOnlyDictionary<string, long[]> sd, bool strict)
    {
        long width = 0, mlp = 0, tokens = 0;
        int patch = 0, inChans = 0, grid = 0;

        if (sd.TryGetValue("patch_embed.proj.weight", out var pw) && pw.Length == 4)
        {
            width = pw[0];
            inChans = (int)pw[1];
            if (pw[2] == pw[3]) patch = (int)pw[2];
            else if (strict) throw new ArgumentException($"patch_embed.proj.weight {VitStateDictKeys.ShapeText(pw)} has a non-square patch; only square patches are supported.");
        }
        else if (strict)
            throw new ArgumentException($"not a ViT backbone: patch_embed.proj.weight is {(pw is null ? "missing" : VitStateDictKeys.ShapeText(pw) + ", not 4-D")} (keys: {KeyList(sd.Keys)}).");
        else if (sd.TryGetValue("cls_token", out var ct) && ct.Length == 3) width = ct[2];

        var blockIdx = sd.Keys.Select(VitStateDictKeys.BlockIndex).Where(i => i.HasValue).Select(i => i!.Value).Distinct().OrderBy(i => i).ToList();
        int depth = blockIdx.Count == 0 ? 0 : blockIdx[^1] + 1;
        if (strict)
        {
            if (depth == 0) throw new ArgumentException($"not a ViT backbone: no blocks.{{i}}.* tensors (keys: {KeyList(sd.Keys)}).");
            if (blockIdx.Count != depth)
                throw new ArgumentException($"block indices are not 0..{depth - 1}: missing {string.Join(", ", Enumerable.Range(0, depth).Except(blockIdx))}.");
        }

        if (sd.TryGetValue("blocks.0.mlp.fc1.weight", out var fc1) && fc1.Length == 2) mlp = fc1[0];
        else if (strict) throw new ArgumentException("blocks.0.mlp.fc1.weight is missing or not 2-D: cannot read the MLP width.");

        if (sd.TryGetValue("pos_embed", out var pe) && pe.Length == 3)
        {
            tokens = pe[1];
            grid = TokenGrid.SideOfTokens(tokens) ?? 0;
            if (strict && pe[2] != width)
                throw new ArgumentException($"pos_embed {VitStateDictKeys.ShapeText(pe)} does not match width {width}.");
        }
        if (strict)
        {
            if (tokens == 0) throw new ArgumentException("pos_embed is missing or not 3-D: cannot read the grid (image size).");
            if (grid == 0)
                throw new ArgumentException(
                    $"pos_embed has {tokens} tokens, which is not one CLS token plus a square grid " +
                    "(a distillation/register token, or a table without the CLS row, is not supported).");
        }
        bool qkvBias = sd.ContainsKey("blocks.0.attn.qkv.bias");
        return new Shapes(width, depth, patch, inChans, mlp, tokens, grid, qkvBias);
    }

    static string KeyList(IEnumerable<string> keys)
    {
        var list = keys.Take(8).ToList();
        int n = keys.Count();
        return n == 0 ? "none" : string.Join(", ", list) + (n > list.Count ? $", ... ({n} in all)" : "");
    }
}
