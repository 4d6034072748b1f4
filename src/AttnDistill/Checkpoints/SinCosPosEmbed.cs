using static TorchSharp.torch;

namespace AttnDistill.Checkpoints;

/// <summary>
/// MAE's fixed 2-D sin-cos position table (get_2d_sincos_pos_embed), used here to recognise it in a
/// checkpoint and to rebuild it for another grid. The first half of the width encodes the column
/// index, the second half the row index; each half is [sin | cos] with frequencies
/// 1/10000^(i/(D/4)). Computed in float64, as MAE does with numpy.
/// </summary>
public static class SinCosPosEmbed
{
    /// <summary>(1, 1 + grid*grid, dim) float32, with a zero row for CLS first.</summary>
    public static Tensor Table(int dim, int grid)
    {
        if (dim % 4 != 0) throw new ArgumentException($"a 2-D sin-cos table needs a width divisible by 4, got {dim}.");
        using var scope = NewDisposeScope();
        int quarter = dim / 4;
        var omega = pow(10000.0, -(arange(quarter, dtype: ScalarType.Float64) / quarter)); // (D/4)
        var idx = arange(grid, dtype: ScalarType.Float64);
        var rows = idx.repeat_interleave(grid);                 // (g*g) row of each token, row-major
        var cols = idx.repeat(grid);                            // (g*g) column of each token
        Tensor Half(Tensor pos)
        {
            var angles = outer(pos, omega);                     // (g*g, D/4)
            return cat(new[] { angles.sin(), angles.cos() }, 1); // (g*g, D/2)
        }
        var table = cat(new[] { Half(cols), Half(rows) }, 1);   // (g*g, D)
        table = cat(new[] { zeros(1, dim, dtype: ScalarType.Float64), table }, 0); // (1 + g*g, D)
        return table.unsqueeze(0).to(ScalarType.Float32).MoveToOuterDisposeScope();
    }

    /// <summary>True when <paramref name="posEmbed"/> (1, 1 + g*g, D) is the sin-cos table within <paramref name="tolerance"/>.</summary>
    public static bool Matches(Tensor posEmbed, double tolerance = 1e-4)
    {
        if (posEmbed.dim() != 3 || posEmbed.shape[0] != 1) return false;
        long tokens = posEmbed.shape[1] - 1, dim = posEmbed.shape[2];
        int grid = (int)Math.Round(Math.Sqrt(tokens));
        if (grid * grid != tokens || dim % 4 != 0 || dim > int.MaxValue) return false;
        using var scope = NewDisposeScope();
        var table = Table((int)dim, grid);
        return (posEmbed.detach().cpu().to(ScalarType.Float32) - table).abs().max().item<float>() <= tolerance;
    }
}
