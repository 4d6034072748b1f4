using AttnDistill.Models;
using AttnDistill.Zoo;

namespace AttnDistill.Checkpoints;

/// <summary>
/// Which rule moves a checkpoint's position table to another grid, and why: the rule of the code
/// that made the checkpoint, so the features equal what that code computes at the new size.
/// </summary>
/// <param name="Rule">The resampling rule for learnable tables.</param>
/// <param name="RebuildSinCos">An exact 2-D sin-cos table is rebuilt for the new grid (this project's
/// own fixed tables) instead of being resampled like a learned one (what MAE's and timm's code do).</param>
/// <param name="Why">What the file was recognised as, for the load log.</param>
public sealed record PosEmbedSource(PosEmbedRule Rule, bool RebuildSinCos, string Why)
{
    /// <summary>This project's ViT: DINO's rule on the fly, sin-cos tables recomputed.</summary>
    public static readonly PosEmbedSource ThisProject = new(PosEmbedRule.Dino, true, "this project's ViT");

    /// <summary>
    /// Recognises the source from the file: a config we stored, a teacher-zoo file name (also when
    /// torch.hub downloaded it), the wrapper entry (DINO/iBOT: teacher/student; Mugs: state_dict;
    /// MAE/DeiT: model), then the container (safetensors without our config: timm's hub format; a
    /// plain .pth: DINO's published backbones, and this project's .pth exports).
    /// </summary>
    public static PosEmbedSource Of(BackboneCheckpoint ckpt)
    {
        if (ckpt.Config is not null) return ThisProject with { Why = "a file this project wrote" };
        string file = System.IO.Path.GetFileName(ckpt.Path);
        if (TeacherZoo.Entries.FirstOrDefault(e => string.Equals(e.FileName, file, StringComparison.Ordinal)) is { } entry)
            return new(entry.Source == "mae" ? PosEmbedRule.Mae : PosEmbedRule.Dino, false, $"the {entry.Source} teacher {entry.Name}");
        string? wrapper = ckpt.WrapperKey?.Split('/')[0];
        return wrapper switch
        {
            "teacher" or "student" => new(PosEmbedRule.Dino, false, $"a DINO/iBOT training checkpoint ('{wrapper}')"),
            "state_dict" => new(PosEmbedRule.Dino, false, "a DINO-family release under 'state_dict' (Mugs, iBOT)"),
            "model" => new(PosEmbedRule.Mae, false, "an MAE/DeiT checkpoint under 'model'"),
            _ when ckpt.Format == CheckpointFormat.Safetensors => new(PosEmbedRule.Timm, false, "a safetensors file without this project's config (timm's format)"),
            _ => new(PosEmbedRule.Dino, true, "a plain state dict (DINO's published backbones, this project's .pth exports)"),
        };
    }
}
