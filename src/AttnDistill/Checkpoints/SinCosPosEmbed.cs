using AttnDistill.Models;
using static TorchSharp.torch;

namespace AttnDistill.Checkpoints;

/// <summary>
/// Recognises MAE's fixed 2-D sin-cos position table in a checkpoint (the model's own table,
/// <see cref="PositionEmbedding.SinCos2D"/>), and builds it for another grid.
/// </summary>
public static class SinCosPosEmbed
{
    /// <summary>(1, 1 + grid*grid, dim) float32, with a zero row for CLS first.</summary>
    public static Tensor Table(int dim, int grid)
    {
        if (dim % 4 != 0) throw new ArgumentException($"a 2-D sin-cos table needs a width divisible by 4, got {dim}.");
        using var table = PositionEmbedding.SinCos2D(dim, grid);
        return table.unsqueeze(0);
    }

    /// <summary>True when <paramref name="posEmbed"/> (1, 1 + g*g, D) is the sin-cos table within <paramref name="tolerance"/>.</summary>
    public static bool Matches(Tensor posEmbed, double tolerance = 1e-4)
    {
        if (posEmbed.dim() != 3 || posEmbed.shape[0] != 1) return false;
        long dim = posEmbed.shape[2];
        if (TokenGrid.SideOfTable(posEmbed) is not int grid || dim % 4 != 0 || dim > int.MaxValue) return false;
        using var scope = NewDisposeScope();
        var table = Table((int)dim, grid);
        return (posEmbed.detach().cpu().to(ScalarType.Float32) - table).abs().max().item<float>() <= tolerance;
    }
}
