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

    public static IReadOnlyCollection<string> Names => All.Keys;

    /// <summary>The preset, or an error listing the known names.</summary>
    public static VitConfig Get(string name) =>
        All.TryGetValue(name, out var cfg)
            ? cfg
            : throw new ArgumentException($"unknown model preset '{name}'. Known presets: {string.Join(", ", All.Keys.Order())}.");

    /// <summary>Heads of the standard width table (DINO/MAE/timm), used when a checkpoint does not say.</summary>
    public static int? StandardHeadsForWidth(int width) => width switch
    {
        192 => 3, 384 => 6, 768 => 12, 1024 => 16, 1280 => 16, _ => null,
    };
}
