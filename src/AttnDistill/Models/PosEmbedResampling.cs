using static TorchSharp.torch;

namespace AttnDistill.Models;

/// <summary>
/// The one resampler of position tables: the CLS row is kept, the g x g patch rows are laid out as a
/// (D, g, g) image and resized bicubically to gh x gw as <see cref="PosEmbedRule"/> says. The model
/// itself resamples on the fly by DINO's rule (multi-crop feeds it smaller crops, as DINO's ViT);
/// checkpoints loaded at another size are resampled by the rule of their source.
/// </summary>
public static class PosEmbedResampling
{
    /// <summary>(1, 1 + g*g, D) -> (1, 1 + gh*gw, D) in the input's dtype; the input itself (an alias) when the grid is already gh x gw.</summary>
    public static Tensor Resample(Tensor posEmbed, int gridH, int gridW, PosEmbedRule rule)
    {
        int g = TokenGrid.SideOfTable(posEmbed) ?? throw new ArgumentException(
            $"pos_embed [{string.Join(", ", posEmbed.shape)}] is not one CLS row plus a square grid; it cannot be resampled.");
        if (gridH <= 0 || gridW <= 0) throw new ArgumentOutOfRangeException(nameof(gridH), $"target grid {gridH}x{gridW} must be positive.");
        if (g == gridH && g == gridW) return posEmbed.alias();
        using var scope = NewDisposeScope();
        long dim = posEmbed.shape[2];
        // DINO and MAE interpolate in the table's dtype; timm casts to float32 and back.
        var pe = rule == PosEmbedRule.Timm ? posEmbed.to(ScalarType.Float32) : posEmbed;
        var cls = pe.narrow(1, 0, 1);                                                   // (1, 1, D)
        var patches = pe.narrow(1, 1, (long)g * g).reshape(1, g, g, dim).permute(0, 3, 1, 2); // (1, D, g, g)
        var resized = rule switch
        {
            // DINO adds 0.1 to the target side "to avoid floating point error" (dino issue 8) and passes a scale factor.
            PosEmbedRule.Dino => nn.functional.interpolate(patches, scale_factor: new[] { (gridH + 0.1) / g, (gridW + 0.1) / g },
                mode: InterpolationMode.Bicubic, align_corners: false),
            PosEmbedRule.Timm => nn.functional.interpolate(patches, size: new long[] { gridH, gridW },
                mode: InterpolationMode.Bicubic, align_corners: false, antialias: true),
            PosEmbedRule.Mae => nn.functional.interpolate(patches, size: new long[] { gridH, gridW },
                mode: InterpolationMode.Bicubic, align_corners: false),
            _ => throw new ArgumentOutOfRangeException(nameof(rule), rule, null),
        };                                                                              // (1, D, gh, gw)
        if (resized.shape[2] != gridH || resized.shape[3] != gridW)
            throw new InvalidOperationException($"pos_embed resampling gave {resized.shape[2]}x{resized.shape[3]}, wanted {gridH}x{gridW}.");
        var flat = resized.permute(0, 2, 3, 1).reshape(1, (long)gridH * gridW, dim);  // (1, gh*gw, D)
        return cat(new[] { cls, flat }, 1).to(posEmbed.dtype).contiguous().MoveToOuterDisposeScope();
    }

    /// <summary>The rule as the load log names it.</summary>
    public static string Describe(PosEmbedRule rule) => rule switch
    {
        PosEmbedRule.Dino => "DINO's interpolate_pos_encoding (bicubic, scale factor (g'+0.1)/g)",
        PosEmbedRule.Timm => "timm's resample_abs_pos_embed (bicubic, antialias)",
        PosEmbedRule.Mae => "MAE's interpolate_pos_embed (bicubic, no antialias)",
        _ => rule.ToString(),
    };
}
