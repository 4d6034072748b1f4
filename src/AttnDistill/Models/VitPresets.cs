namespace AttnDistill.Models;

/// <summary>
/// Named architectures: supplement Table 7 (students and teachers, 224x224) plus the standard
/// DINO/MAE/timm sizes. Names follow timm ("vit_tiny_patch16"); any shape can still be built
/// directly from a <see cref="VitConfig"/> or by overriding a preset's fields with `with`.
/// </summary>
public static class VitPresets
{
    static VitConfig Tiny => new() { EmbedDim = 192, Depth = 12, NumHeads = 3 };
    static VitConfig Small => new() { EmbedDim = 384, Depth = 12, NumHeads = 6 };
    static VitConfig Base => new() { EmbedDim = 768, Depth = 12, NumHeads = 12 };
    static VitConfig Large => new() { EmbedDim = 1024, Depth = 24, NumHeads = 16 };

    static readonly Dictionary<string, VitConfig> All = Build();

    static Dictionary<string, VitConfig> Build()
    {
        var d = new Dictionary<string, VitConfig>(StringComparer.OrdinalIgnoreCase);
        foreach (var (size, cfg) in new[] { ("tiny", Tiny), ("small", Small), ("base", Base), ("large", Large) })
            foreach (int p in new[] { 8, 16, 28, 32 })
                d[$"vit_{size}_patch{p}"] = cfg with { PatchSize = p };
        // Table 7, ImageNet-Subset students: 6-head and 8-layer tiny variants. (Its 65-token rows are an
        // 8x8 grid: patch 28 at 224, or patch 32 at 256.)
        foreach (int p in new[] { 8, 16, 28, 32 })
        {
            d[$"vit_tiny_h6_patch{p}"] = Tiny with { NumHeads = 6, PatchSize = p };
            d[$"vit_tiny_d8_patch{p}"] = Tiny with { Depth = 8, PatchSize = p };
        }
        // MAE-style teachers and students use fixed sin-cos position embeddings.
        foreach (var key in d.Keys.ToList())
            d[key.Replace("vit_", "mae_vit_")] = d[key] with { PosEmbed = PosEmbedKind.SinCos };
        return d;
    }

    /// <summary>The canonical names (aliases such as timm's are resolved by <see cref="Get"/>, not listed here).</summary>
    public static IReadOnlyCollection<string> Names => All.Keys;

    /// <summary>Names of other codebases that <see cref="Get"/> also accepts (shown by `attndistill models`).</summary>
    public static readonly IReadOnlyList<string> AliasExamples =
    [
        "vit_tiny", "vit_small", "vit_base", "vit_large",
        "vit_tiny_patch16_224", "vit_small_patch16_224", "vit_small_patch8_224", "vit_base_patch16_224", "vit_base_patch8_224", "vit_large_patch16_224",
        "deit_tiny_patch16_224", "deit_small_patch16_224", "deit_base_patch16_224",
        "vit_small_patch16_224.dino", "vit_base_patch16_224.mae",
    ];

    /// <summary>
    /// The preset named by this project's name, timm's (<c>vit_small_patch8_224</c>, a pretrained tag such as
    /// <c>.dino</c> ignored: the architecture is the same), DeiT's (<c>deit_tiny_patch16_224</c>), or a short
    /// size name (<c>vit_tiny</c>: patch 16 unless the command's patch option says otherwise); an unknown
    /// name is an error suggesting the nearest known ones.
    /// </summary>
    public static VitConfig Get(string name) =>
        TryGet(name, out var cfg)
            ? cfg
            : throw new ArgumentException($"unknown model preset '{name}'. Nearest: {string.Join(", ", Nearest(name, 3))} (attndistill models lists them all).");

    public static bool TryGet(string name, out VitConfig config)
    {
        config = null!;
        string? canonical = Canonical(name);
        if (canonical is null || !All.TryGetValue(canonical, out var found)) return false;
        config = found;
        return true;
    }

    /// <summary>
    /// Maps an accepted spelling to its canonical key: drops a pretrained tag (".dino"), timm's
    /// resolution suffix ("_224": the image size is the command's --image-size), turns DeiT's prefix
    /// into ViT's (same shapes: DeiT-Ti/S/B are ViT-Ti/S/B), and gives a short size name patch 16.
    /// </summary>
    static string? Canonical(string name)
    {
        string n = name.Trim().ToLowerInvariant();
        int dot = n.IndexOf('.');
        if (dot >= 0) n = n[..dot];
        if (All.ContainsKey(n)) return n;
        if (n.StartsWith("deit_", StringComparison.Ordinal)) n = "vit_" + n["deit_".Length..];
        var m = System.Text.RegularExpressions.Regex.Match(n, @"^(.*_patch\d+)_\d+$");
        if (m.Success) n = m.Groups[1].Value;
        if (!n.Contains("_patch", StringComparison.Ordinal)) n += "_patch16";
        return All.ContainsKey(n) ? n : null;
    }

    /// <summary>The known names closest to <paramref name="name"/> by edit distance (aliases included).</summary>
    public static IReadOnlyList<string> Nearest(string name, int count) =>
        All.Keys.Concat(AliasExamples)
            .Distinct(StringComparer.OrdinalIgnoreCase)
            .OrderBy(k => EditDistance.Levenshtein(name.ToLowerInvariant(), k))
            .ThenBy(k => k, StringComparer.Ordinal)
            .Take(count)
            .ToList();

    /// <summary>
    /// Parameters of the backbone (patch embedding, class token, position table at the config's image
    /// size, blocks, final norm; no classifier), counted from the shapes.
    /// </summary>
    public static long ParameterCount(VitConfig c)
    {
        long d = c.EmbedDim, h = c.MlpHiddenDim, p = c.PatchSize;
        long patchEmbed = c.InChans * p * p * d + d;
        long tokens = d + (c.NumPatches + 1L) * d;
        long block = 2 * 2 * d + (3 * d * d + (c.QkvBias ? 3 * d : 0)) + (d * d + d) + (d * h + h) + (h * d + d);
        return patchEmbed + tokens + c.Depth * block + 2 * d;
    }

    /// <summary>Heads of the standard width table (DINO/MAE/timm), used when a checkpoint does not say.</summary>
    public static int? StandardHeadsForWidth(int width) => width switch
    {
        192 => 3, 384 => 6, 768 => 12, 1024 => 16, 1280 => 16, _ => null,
    };
}
