using static TorchSharp.torch;

namespace AttnDistill.Models;

/// <summary>Position-embedding tables and their resampling to another token grid.</summary>
public static class PositionEmbedding
{
    /// <summary>
    /// MAE's fixed 2-D sin-cos table with a zero row for CLS: (1 + g*g, D). The first D/2 channels
    /// encode the column (x) coordinate and the last D/2 the row (y), as MAE's
    /// get_2d_sincos_pos_embed does; computed in float64 like its numpy code, then cast.
    /// </summary>
    public static Tensor SinCos2D(int embedDim, int gridSize, bool clsToken = true)
    {
        using var scope = NewDisposeScope();
        var coords = arange(gridSize, dtype: float64);
        var ys = coords.repeat_interleave(gridSize);        // row index of each patch, raster order
        var xs = coords.repeat(gridSize);                   // column index
        var half = embedDim / 2;
        var table = cat(new[] { SinCos1D(half, xs), SinCos1D(half, ys) }, 1); // (g*g, D)
        if (clsToken) table = cat(new[] { zeros(1, embedDim, dtype: float64), table }, 0);
        return table.to(float32).MoveToOuterDisposeScope();
    }

    static Tensor SinCos1D(int dim, Tensor positions)
    {
        var omega = arange(dim / 2, dtype: float64).div_(dim / 2.0);
        omega = pow(10000.0, omega).reciprocal_();
        var angles = outer(positions, omega);                 // (M, dim/2)
        return cat(new[] { angles.sin(), angles.cos() }, 1);  // (M, dim)
    }

    /// <summary>
    /// Resamples a (1, 1 + g0*g0, D) table to a gh x gw grid as DINO's interpolate_pos_encoding does
    /// (bicubic with its +0.1 scale-factor offset, so DINO checkpoints give DINO's numbers).
    /// </summary>
    public static Tensor Interpolate(Tensor posEmbed, int gridH, int gridW)
    {
        long n = posEmbed.shape[1] - 1;
        long dim = posEmbed.shape[2];
        int g0 = (int)Math.Round(Math.Sqrt(n));
        if (g0 * g0 != n) throw new ArgumentException($"pos_embed holds {n} patch tokens, not a square grid.");
        if (g0 == gridH && g0 == gridW) return posEmbed.alias();
        using var scope = NewDisposeScope();
        var clsPos = posEmbed.narrow(1, 0, 1);                                               // (1, 1, D)
        var grid = posEmbed.narrow(1, 1, n).reshape(1, g0, g0, dim).permute(0, 3, 1, 2);   // (1, D, g0, g0)
        var resized = nn.functional.interpolate(grid,
            scale_factor: new[] { (gridH + 0.1) / g0, (gridW + 0.1) / g0 },
            mode: InterpolationMode.Bicubic, align_corners: false);                          // (1, D, gh, gw)
        if (resized.shape[2] != gridH || resized.shape[3] != gridW)
            throw new InvalidOperationException($"pos_embed resampling gave {resized.shape[2]}x{resized.shape[3]}, wanted {gridH}x{gridW}.");
        var patches = resized.permute(0, 2, 3, 1).reshape(1, gridH * gridW, dim);
        return cat(new[] { clsPos, patches }, 1).MoveToOuterDisposeScope();
    }
}
