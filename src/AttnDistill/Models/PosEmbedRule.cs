namespace AttnDistill.Models;

/// <summary>
/// How a learnable position table is moved to another patch grid. Each upstream codebase does it
/// its own way and the tables differ by up to about 0.15, so a checkpoint is resampled by the rule
/// of the code that made it (see <see cref="PosEmbedResampling"/>).
/// </summary>
public enum PosEmbedRule
{
    /// <summary>DINO's interpolate_pos_encoding (also iBOT's and Mugs'): bicubic with scale factor (g' + 0.1) / g.</summary>
    Dino,

    /// <summary>timm's resample_abs_pos_embed: bicubic to the target size, antialias on, in float32.</summary>
    Timm,

    /// <summary>MAE's interpolate_pos_embed (DeiT's fine-tuning code): bicubic to the target size, no antialias.</summary>
    Mae,
}
