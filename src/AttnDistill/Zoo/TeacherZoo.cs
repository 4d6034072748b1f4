using AttnDistill.Models;

namespace AttnDistill.Zoo;

/// <summary>
/// The committed registry of published self-supervised ViT teachers. URLs are the authors' own:
/// DINO's hubconf.py, MAE's README, iBOT's README, Mugs' README (its Hugging Face folder).
/// </summary>
public static class TeacherZoo
{
    const string Dino = "https://dl.fbaipublicfiles.com/dino";
    const string Mae = "https://dl.fbaipublicfiles.com/mae/pretrain";
    const string Ibot = "https://lf3-nlp-opensource.bytetos.com/obj/nlp-opensource/archive/2022/ibot";
    const string Mugs = "https://huggingface.co/zhoupans/Mugs/resolve/main/pretrained%20models";
    const string DinoFormat = "torch zip, flat DINO-named backbone state dict (teacher)";
    const string IbotFormat = "torch zip, {state_dict: DINO-named teacher backbone + head}";
    const string MugsFormat = "torch zip, {state_dict: DINO-named backbone + relation blocks}";
    const string MaeFormat = "torch zip, {model: MAE encoder, sin-cos pos_embed}";

    public static readonly IReadOnlyList<TeacherZooEntry> Entries =
    [
        new("dino_vits16", "dino", $"{Dino}/dino_deitsmall16_pretrain/dino_deitsmall16_pretrain.pth", "dino_deitsmall16_pretrain.pth", "vit_small_patch16", DinoFormat, TimmName: "vit_small_patch16_224.dino"),
        new("dino_vits8", "dino", $"{Dino}/dino_deitsmall8_pretrain/dino_deitsmall8_pretrain.pth", "dino_deitsmall8_pretrain.pth", "vit_small_patch8", DinoFormat, TimmName: "vit_small_patch8_224.dino"),
        new("dino_vitb16", "dino", $"{Dino}/dino_vitbase16_pretrain/dino_vitbase16_pretrain.pth", "dino_vitbase16_pretrain.pth", "vit_base_patch16", DinoFormat, TimmName: "vit_base_patch16_224.dino"),
        new("dino_vitb8", "dino", $"{Dino}/dino_vitbase8_pretrain/dino_vitbase8_pretrain.pth", "dino_vitbase8_pretrain.pth", "vit_base_patch8", DinoFormat, TimmName: "vit_base_patch8_224.dino"),
        new("mae_vitb16", "mae", $"{Mae}/mae_pretrain_vit_base.pth", "mae_pretrain_vit_base.pth", "mae_vit_base_patch16", MaeFormat, TimmName: "vit_base_patch16_224.mae"),
        new("mae_vitl16", "mae", $"{Mae}/mae_pretrain_vit_large.pth", "mae_pretrain_vit_large.pth", "mae_vit_large_patch16", MaeFormat, TimmName: "vit_large_patch16_224.mae"),
        new("ibot_vits16", "ibot", $"{Ibot}/vits_16/checkpoint_teacher.pth", "ibot_vits16_checkpoint_teacher.pth", "vit_small_patch16", IbotFormat),
        new("ibot_vitb16", "ibot", $"{Ibot}/vitb_16/checkpoint_teacher.pth", "ibot_vitb16_checkpoint_teacher.pth", "vit_base_patch16", IbotFormat),
        new("ibot_vitl16", "ibot", $"{Ibot}/vitl_16/checkpoint_teacher.pth", "ibot_vitl16_checkpoint_teacher.pth", "vit_large_patch16", IbotFormat),
        new("mugs_vits16", "mugs", $"{Mugs}/vit_small_800ep/vit_small_backbone_800ep.pth", "vit_small_backbone_800ep.pth", "vit_small_patch16", MugsFormat),
        new("mugs_vitb16", "mugs", $"{Mugs}/vit_base_400ep/vit_base_backbone_400ep.pth", "vit_base_backbone_400ep.pth", "vit_base_patch16", MugsFormat),
        new("mugs_vitl16", "mugs", $"{Mugs}/vit_large_250ep/vit_large_backbone_250ep.pth", "vit_large_backbone_250ep.pth", "vit_large_patch16", MugsFormat),
    ];

    /// <summary>The entry named by its zoo name or its timm name (case-insensitive), or null.</summary>
    public static TeacherZooEntry? Find(string name)
    {
        string n = name.Trim();
        return Entries.FirstOrDefault(e => string.Equals(e.Name, n, StringComparison.OrdinalIgnoreCase)
                                           || string.Equals(e.TimmName, n, StringComparison.OrdinalIgnoreCase));
    }

    /// <summary>The zoo names closest to <paramref name="name"/> by edit distance.</summary>
    public static IReadOnlyList<string> Nearest(string name, int count) =>
        Entries.Select(e => e.Name)
            .OrderBy(n => EditDistance.Levenshtein(name.ToLowerInvariant(), n))
            .ThenBy(n => n, StringComparer.Ordinal)
            .Take(count)
            .ToList();
}
