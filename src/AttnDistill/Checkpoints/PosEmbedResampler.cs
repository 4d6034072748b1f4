using static TorchSharp.torch;

namespace AttnDistill.Checkpoints;

/// <summary>
/// Resamples a square absolute position table to another grid, as timm's resample_abs_pos_embed:
/// the CLS row is kept, the patch rows are laid out as a (D, g, g) image and resized bicubically
/// (align_corners false, no antialias), in float32.
/// </summary>
public static class PosEmbedResampler
{
    /// <summary>(1, 1 + g*g, D) -> (1, 1 + newGrid*newGrid, D), in the input's dtype.</summary>
    public static Tensor Resample(Tensor posEmbed, int newGrid)
    {
        int grid = GridOf(posEmbed) ?? throw new ArgumentException(
            $"pos_embed {VitStateDictKeys.ShapeText(posEmbed.shape)} is not one CLS row plus a square grid; it cannot be resampled.");
        if (newGrid <= 0) throw new ArgumentOutOfRangeException(nameof(newGrid));
        using var scope = NewDisposeScope();
        long dim = posEmbed.shape[2];
        var pe = posEmbed.detach().to(ScalarType.Float32);
        var cls = pe.narrow(1, 0, 1);                                                 // (1, 1, D)
        var patches = pe.narrow(1, 1, (long)grid * grid)
            .reshape(1, grid, grid, dim).permute(0, 3, 1, 2);                        // (1, D, g, g)
        var resized = nn.functional.interpolate(patches, size: new long[] { newGrid, newGrid },
            mode: InterpolationMode.Bicubic, align_corners: false);                   // (1, D, g', g')
        var flat = resized.permute(0, 2, 3, 1).reshape(1, (long)newGrid * newGrid, dim); // (1, g'*g', D)
        return cat(new[] { cls, flat }, 1).to(posEmbed.dtype).contiguous().MoveToOuterDisposeScope();
    }

    /// <summary>The grid side of a (1, 1 + g*g, D) table, or null when it has another shape.</summary>
    public static int? GridOf(Tensor posEmbed) => posEmbed.dim() == 3 && posEmbed.shape[0] == 1 ? GridOfTokens(posEmbed.shape[1]) : null;

    /// <summary>g for 1 + g*g tokens, else null.</summary>
    public static int? GridOfTokens(long tokens)
    {
        long n = tokens - 1;
        if (n <= 0) return null;
        long g = (long)Math.Round(Math.Sqrt(n));
        return g * g == n ? (int)g : null;
    }
}
