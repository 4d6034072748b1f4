using AttnDistill.Tensors;
using AttnDistill.Distillation;
using TorchSharp;
using static TorchSharp.torch;

namespace AttnDistill.Visualization;

/// <summary>
/// Turns CLS attention rows into heat-map tiles blended over the image, all with libtorch ops on
/// whole stacks of maps: drop the CLS entry, scale each map to [0, 1], enlarge to the tile, colour
/// through a lookup table, blend.
/// </summary>
public static class HeatmapOverlay
{
    /// <summary>(K, 1 + N) rows -> (K, n, n) patch maps in raster order; the CLS-to-CLS entry is dropped.</summary>
    public static Tensor PatchGrid(Tensor rows)
    {
        if (rows.dim() != 2) throw new ArgumentException($"rows must be (K, 1 + N), got [{string.Join(", ", rows.shape)}].");
        int n = AttentionInterpolation.GridSide(rows.shape[1]);
        return rows.narrow(1, 1, (long)n * n).reshape(rows.shape[0], n, n);
    }

    /// <summary>
    /// Each map of (K, h, w) scaled to its own [0, 1] range (min -> 0, max -> 1), as DINO's figures do:
    /// heads and aggregated maps differ by orders of magnitude (T flattens the aggregate), so one
    /// common scale would show most tiles as a single colour. A constant map becomes 0.
    /// </summary>
    public static Tensor ScaleToUnit(Tensor maps)
    {
        using var scope = NewDisposeScope();
        var flat = maps.reshape(maps.shape[0], -1);
        var min = flat.amin(new long[] { 1 }, keepdim: true);
        var range = flat.amax(new long[] { 1 }, keepdim: true) - min;
        return ((flat - min) / range.ClampMin(1e-12)).reshape(maps.shape).MoveToOuterDisposeScope();
    }

    /// <summary>(K, h, w) in [0, 1] -> (K, size, size), bicubic (overshoot clamped back to [0, 1]) or nearest.</summary>
    public static Tensor Upsample(Tensor unitMaps, int size, HeatmapUpsampling mode)
    {
        using var scope = NewDisposeScope();
        var x = unitMaps.unsqueeze(1);                                                     // (K, 1, h, w)
        x = mode == HeatmapUpsampling.Nearest
            ? nn.functional.interpolate(x, size: new long[] { size, size }, mode: InterpolationMode.Nearest)
            : nn.functional.interpolate(x, size: new long[] { size, size }, mode: InterpolationMode.Bicubic, align_corners: false);
        return x.squeeze(1).ClampTo(0, 1).MoveToOuterDisposeScope();                         // (K, size, size)
    }

    /// <summary>(K, h, w) in [0, 1] -> (K, 3, h, w) RGB through a (256, 3) lookup table.</summary>
    public static Tensor Colorize(Tensor unitMaps, Tensor lookup)
    {
        using var scope = NewDisposeScope();
        var index = unitMaps.Times(255).round().ClampTo(0, 255).to(ScalarType.Int64);          // (K, h, w)
        var rgb = lookup.index_select(0, index.flatten()).reshape(index.shape[0], index.shape[1], index.shape[2], 3);
        return rgb.permute(0, 3, 1, 2).contiguous().MoveToOuterDisposeScope();             // (K, 3, h, w)
    }

    /// <summary>alpha * heat + (1 - alpha) * image; heat (K, 3, h, w), image (3, h, w), both in [0, 1].</summary>
    public static Tensor Blend(Tensor heat, Tensor image, double alpha)
    {
        if (alpha is < 0 or > 1) throw new ArgumentException($"heat-map opacity must be in [0, 1], got {alpha}.");
        using var scope = NewDisposeScope();
        return heat.Times(alpha).Plus(image.unsqueeze(0).Times(1 - alpha)).MoveToOuterDisposeScope();
    }

    /// <summary>The whole chain for one model's maps on one image: rows (K, 1 + N), image tile (3, T, T) -> tiles (K, 3, T, T).</summary>
    public static Tensor Tiles(Tensor rows, Tensor imageTile, Tensor lookup, HeatmapUpsampling mode, double alpha)
    {
        using var scope = NewDisposeScope();
        int size = (int)imageTile.shape[2];
        var unit = Upsample(ScaleToUnit(PatchGrid(rows)), size, mode);
        return Blend(Colorize(unit, lookup), imageTile, alpha).MoveToOuterDisposeScope();
    }
}
