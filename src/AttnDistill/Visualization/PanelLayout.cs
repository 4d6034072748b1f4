namespace AttnDistill.Visualization;

/// <summary>What a tile of an attention panel shows.</summary>
public enum PanelTileKind
{
    /// <summary>The input image (teacher row only).</summary>
    Image,
    /// <summary>The model's aggregated map (docs/METHOD.md, section 1.4).</summary>
    Aggregated,
    /// <summary>One head's CLS attention map.</summary>
    Head,
}

/// <summary>One square tile: its place in the grid, what it shows (Head = 0-based head index) and its pixel rectangle.</summary>
public readonly record struct PanelTile(int Row, int Column, PanelTileKind Kind, int Head, int X, int Y, int Size);

/// <summary>
/// Geometry of an attention panel as in the supplement's Figures 9-11: row 0 is the teacher
/// (IMG, AGGR, one tile per head), then one row per student (AGGR, one tile per head; its KL to the
/// teacher under AGGR). Every row has a title strip above and a caption strip under its tiles; a
/// colour bar stands right of the teacher row. Pure arithmetic, so tests can check it without drawing.
/// </summary>
public sealed class PanelLayout
{
    PanelLayout() { }

    public int TileSize { get; private init; }
    public int Gap { get; private init; }
    public int Margin { get; private init; }
    public int FontSize { get; private init; }
    public int TitleHeight { get; private init; }
    public int CaptionHeight { get; private init; }
    public int Rows { get; private init; }
    public int Columns { get; private init; }
    public int Width { get; private init; }
    public int Height { get; private init; }
    public IReadOnlyList<PanelTile> Tiles { get; private init; } = Array.Empty<PanelTile>();

    /// <summary>The colour bar's rectangle (top = the maximum).</summary>
    public (int X, int Y, int Width, int Height) ColorBar { get; private init; }

    /// <summary>Top of row r's title strip.</summary>
    public int RowTop(int row) => Margin + row * RowPitch;

    int RowPitch => TitleHeight + TileSize + CaptionHeight + Gap;

    /// <param name="tileSize">Edge of every tile in pixels.</param>
    /// <param name="headsPerRow">Heads of the teacher (row 0), then of each student.</param>
    public static PanelLayout For(int tileSize, IReadOnlyList<int> headsPerRow)
    {
        if (tileSize < 16) throw new ArgumentException($"tile size must be at least 16 pixels, got {tileSize}.");
        if (headsPerRow.Count == 0 || headsPerRow.Any(h => h <= 0)) throw new ArgumentException("every row needs at least one head.");
        int font = Math.Clamp(tileSize / 10, 11, 18);
        int gap = Math.Max(4, tileSize / 24), margin = 2 * gap;
        int title = font + 10, caption = font + 8;
        int columns = 2 + headsPerRow.Max();
        int pitch = title + tileSize + caption + gap;

        var tiles = new List<PanelTile>();
        for (int r = 0; r < headsPerRow.Count; r++)
        {
            int y = margin + r * pitch + title;
            int X(int c) => margin + c * (tileSize + gap);
            if (r == 0) tiles.Add(new PanelTile(r, 0, PanelTileKind.Image, -1, X(0), y, tileSize));
            tiles.Add(new PanelTile(r, 1, PanelTileKind.Aggregated, -1, X(1), y, tileSize));
            for (int h = 0; h < headsPerRow[r]; h++)
                tiles.Add(new PanelTile(r, 2 + h, PanelTileKind.Head, h, X(2 + h), y, tileSize));
        }
        int gridRight = margin + columns * (tileSize + gap) - gap;
        int barWidth = Math.Max(10, tileSize / 10);
        var bar = (gridRight + 3 * gap, margin + title, barWidth, tileSize);
        int labelWidth = 5 * font;                                        // "max", "min", "per map"
        return new PanelLayout
        {
            TileSize = tileSize, Gap = gap, Margin = margin, FontSize = font, TitleHeight = title, CaptionHeight = caption,
            Rows = headsPerRow.Count, Columns = columns, Tiles = tiles, ColorBar = bar,
            Width = bar.Item1 + barWidth + gap + labelWidth + margin,
            Height = margin + headsPerRow.Count * pitch - gap + margin,
        };
    }

    /// <summary>Default tile edge for images of side S: S itself when it is large, else S enlarged by a whole factor to at least 128 px.</summary>
    public static int DefaultTileSize(int imageSize) =>
        imageSize >= 128 ? imageSize : imageSize * (int)Math.Ceiling(128.0 / imageSize);
}
