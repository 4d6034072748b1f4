using static TorchSharp.torch;

namespace AttnDistill.Models;

/// <summary>
/// The side of a square patch grid, read from a token count: the one place where 1 + g*g tokens
/// (a CLS token then g*g patches, raster order) become g, so every caller refuses the same shapes.
/// </summary>
public static class TokenGrid
{
    /// <summary>g for g*g patches, or null when the count is not a positive square.</summary>
    public static int? SideOfPatches(long patches)
    {
        if (patches <= 0) return null;
        long g = (long)Math.Round(Math.Sqrt(patches));
        return g * g == patches && g <= int.MaxValue ? (int)g : null;
    }

    /// <summary>g for one CLS token plus g*g patches, or null.</summary>
    public static int? SideOfTokens(long tokens) => SideOfPatches(tokens - 1);

    /// <summary>g of a (1, 1 + g*g, D) position table, or null when it has another shape.</summary>
    public static int? SideOfTable(Tensor posEmbed) =>
        posEmbed.dim() == 3 && posEmbed.shape[0] == 1 ? SideOfTokens(posEmbed.shape[1]) : null;
}
