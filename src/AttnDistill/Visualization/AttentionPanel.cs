using AttnDistill.Tensors;
using System.Globalization;
using SkiaSharp;
using TorchSharp;
using static TorchSharp.torch;

namespace AttnDistill.Visualization;

/// <summary>
/// Draws the panel of one image (supplement Figures 9-11, layout in <see cref="PanelLayout"/>):
/// tiles are composed with libtorch ops, labels are drawn with SkiaSharp.
/// </summary>
public static class AttentionPanel
{
    /// <summary>
    /// The panel of image <paramref name="index"/> of <paramref name="maps"/>.
    /// </summary>
    /// <param name="image">That image as the models saw it, un-normalized to (3, S, S) in [0, 1].</param>
    /// <param name="imageName">Shown in the teacher row's title.</param>
    /// <param name="lookup">Colour table from <see cref="HeatmapColors.Lookup"/>.</param>
    public static SKBitmap Render(AttentionMapSet maps, int index, Tensor image, string imageName, AttentionPanelOptions options, Tensor lookup)
    {
        ArgumentNullException.ThrowIfNull(maps);
        if (index < 0 || index >= maps.Count) throw new ArgumentOutOfRangeException(nameof(index), $"image {index} of a batch of {maps.Count}.");
        if (image.dim() != 3 || image.shape[0] != 3) throw new ArgumentException($"image must be (3, S, S), got [{string.Join(", ", image.shape)}].");
        var rows = new[] { maps.Teacher }.Concat(maps.Students).ToList();
        int tile = options.TileSize ?? PanelLayout.DefaultTileSize((int)image.shape[1]);
        var layout = PanelLayout.For(tile, rows.Select(r => r.HeadCount).ToList());

        SKBitmap bitmap;
        using (NewDisposeScope())
        {
            var canvas = ones(3, layout.Height, layout.Width);                              // white (3, H, W)
            var imageTile = nn.functional.interpolate(image.unsqueeze(0).cpu(), size: new long[] { tile, tile },
                mode: InterpolationMode.Bicubic, align_corners: false).squeeze(0).ClampTo(0, 1);  // (3, T, T)
            foreach (var t in layout.Tiles.Where(t => t.Kind == PanelTileKind.Image)) Paste(canvas, imageTile, t);
            for (int r = 0; r < rows.Count; r++)
            {
                var m = rows[r];
                var stack = cat(new[] { m.Aggregated[index].unsqueeze(0), m.Heads[index] }, 0);    // (1 + h, 1 + N)
                var tiles = HeatmapOverlay.Tiles(stack, imageTile, lookup, options.Upsampling, options.Alpha); // (1 + h, 3, T, T)
                foreach (var t in layout.Tiles.Where(t => t.Row == r && t.Kind != PanelTileKind.Image))
                    Paste(canvas, tiles[t.Kind == PanelTileKind.Aggregated ? 0 : 1 + t.Head], t);
            }
            var (bx, by, bw, bh) = layout.ColorBar;
            var ramp = linspace(1, 0, bh).reshape(1, bh, 1).expand(1, bh, bw);              // top = max
            canvas.narrow(1, by, bh).narrow(2, bx, bw).copy_(HeatmapOverlay.Colorize(ramp, lookup)[0]);
            bitmap = RgbPicture.ToBitmap(canvas);
        }
        try
        {
            DrawLabels(bitmap, layout, rows, index, imageName, options);
        }
        catch
        {
            bitmap.Dispose();
            throw;
        }
        return bitmap;
    }

    static void Paste(Tensor canvas, Tensor tile, PanelTile at) =>
        canvas.narrow(1, at.Y, at.Size).narrow(2, at.X, at.Size).copy_(tile);

    static void DrawLabels(SKBitmap bitmap, PanelLayout layout, IReadOnlyList<ModelAttention> rows, int index, string imageName, AttentionPanelOptions options)
    {
        using var canvas = new SKCanvas(bitmap);
        using var typeface = RgbPicture.LabelTypeface();
        using var font = new SKFont(typeface, layout.FontSize);
        using var bold = new SKFont(typeface, layout.FontSize) { Embolden = true };
        using var ink = new SKPaint { Color = SKColors.Black, IsAntialias = true };
        using var grey = new SKPaint { Color = new SKColor(90, 90, 90), IsAntialias = true };
        string t = options.Loss.AttnTemperature.ToString("G4", CultureInfo.InvariantCulture);

        for (int r = 0; r < rows.Count; r++)
        {
            var m = rows[r];
            float titleBase = layout.RowTop(r) + layout.TitleHeight - layout.FontSize * 0.55f;
            string title = r == 0
                ? $"teacher: {m.Name}  ({m.HeadCount} heads, {m.Grid}x{m.Grid} patches)   image: {imageName}"
                : $"{m.Name}  ({m.HeadCount} heads, {m.Grid}x{m.Grid} patches)";
            canvas.DrawText(Fit(title, bold, layout.Width - 2 * layout.Margin), layout.Margin, titleBase, SKTextAlign.Left, bold, ink);
            foreach (var tile in layout.Tiles.Where(x => x.Row == r))
            {
                string caption = tile.Kind switch
                {
                    PanelTileKind.Image => "IMG",
                    PanelTileKind.Aggregated when m.KlToTeacher is { } kl => $"AGGR  KL {FormatKl(kl.data<float>()[index])}",
                    PanelTileKind.Aggregated => $"AGGR  T {t}",
                    _ => $"head {tile.Head + 1}",
                };
                var paint = tile.Kind == PanelTileKind.Aggregated && m.KlToTeacher is not null ? ink : grey;
                var f = tile.Kind == PanelTileKind.Aggregated && m.KlToTeacher is not null ? bold : font;
                canvas.DrawText(Fit(caption, f, tile.Size), tile.X + tile.Size / 2f, tile.Y + tile.Size + layout.FontSize + 2,
                    SKTextAlign.Center, f, paint);
            }
        }
        var (bx, by, bw, bh) = layout.ColorBar;
        float lx = bx + bw + layout.Gap;
        canvas.DrawText("max", lx, by + layout.FontSize, SKTextAlign.Left, font, grey);
        canvas.DrawText("min", lx, by + bh, SKTextAlign.Left, font, grey);
        canvas.DrawText("each", lx, by + bh / 2f, SKTextAlign.Left, font, grey);
        canvas.DrawText("map", lx, by + bh / 2f + layout.FontSize + 1, SKTextAlign.Left, font, grey);
    }

    /// <summary>The KL as the figures print it: 4 significant digits, scientific below 1e-3.</summary>
    public static string FormatKl(double kl) =>
        kl is > 0 and < 1e-3 ? kl.ToString("0.00e+00", CultureInfo.InvariantCulture) : kl.ToString("0.0000", CultureInfo.InvariantCulture);

    /// <summary>Cuts text with an ellipsis so it fits the width.</summary>
    static string Fit(string text, SKFont font, float width)
    {
        if (font.MeasureText(text) <= width) return text;
        for (int n = text.Length - 1; n > 0; n--)
        {
            string cut = text[..n] + "...";
            if (font.MeasureText(cut) <= width) return cut;
        }
        return "";
    }
}
