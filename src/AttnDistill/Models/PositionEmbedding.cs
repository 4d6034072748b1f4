using AttnDistill.Tensors;
using static TorchSharp.torch;

namespace AttnDistill.Models;

/// <summary>Fixed position-embedding tables (resampling: <see cref="PosEmbedResampling"/>).</summary>
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
        var coords = KeptScalars.Arange(gridSize, float64);
        var ys = coords.repeat_interleave(gridSize);        // row index of each patch, raster order
        var xs = coords.repeat(gridSize);                   // column index
        var half = embedDim / 2;
        var table = cat(new[] { SinCos1D(half, xs), SinCos1D(half, ys) }, 1); // (g*g, D)
        if (clsToken) table = cat(new[] { zeros(1, embedDim, dtype: float64), table }, 0);
        return table.to(float32).MoveToOuterDisposeScope();
    }

    static Tensor SinCos1D(int dim, Tensor positions)
    {
        var omega = KeptScalars.Arange(dim / 2, float64).DividedByInPlace(dim / 2.0);
        using var timescale = tensor(10000.0, float64);      // a 0-d tensor base: torch.pow(Tensor, Tensor)
        omega = pow(timescale, omega).reciprocal_();
        var angles = outer(positions, omega);                 // (M, dim/2)
        return cat(new[] { angles.sin(), angles.cos() }, 1);  // (M, dim)
    }
}
