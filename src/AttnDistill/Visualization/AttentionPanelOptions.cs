using AttnDistill.Distillation;

namespace AttnDistill.Visualization;

/// <summary>Settings of the attention pictures (<c>attndistill visualize</c>).</summary>
public sealed record AttentionPanelOptions
{
    /// <summary>The loss switches the maps are prepared with (aggregation, T, interpolation, clamps): use the training run's.</summary>
    public DistillLossOptions Loss { get; init; } = new();

    /// <summary>Input size every model is built for (position tables resampled); null = the teacher checkpoint's.</summary>
    public int? ImageSize { get; init; }

    /// <summary>Tile edge in pixels; null = <see cref="PanelLayout.DefaultTileSize"/>.</summary>
    public int? TileSize { get; init; }

    public HeatmapUpsampling Upsampling { get; init; } = HeatmapUpsampling.Bicubic;

    /// <summary>Opacity of the heat map over the image, in [0, 1].</summary>
    public double Alpha { get; init; } = 0.55;

    /// <summary>A ScottPlot colormap name (<see cref="HeatmapColors.Names"/>).</summary>
    public string Colormap { get; init; } = HeatmapColors.DefaultName;

    public AttentionOutputFormat Format { get; init; } = AttentionOutputFormat.Png;

    /// <summary>Images per forward pass.</summary>
    public int BatchSize { get; init; } = 32;


    public AttentionPanelOptions Validate()
    {
        if (Alpha is < 0 or > 1 || double.IsNaN(Alpha)) throw new ArgumentException($"heat-map opacity (--alpha) must be in [0, 1], got {Alpha}.");
        if (BatchSize <= 0) throw new ArgumentException($"batch size must be positive, got {BatchSize}.");
        if (TileSize is < 16) throw new ArgumentException($"tile size must be at least 16 pixels, got {TileSize}.");
        if (ImageSize is <= 0) throw new ArgumentException($"image size must be positive, got {ImageSize}.");
        using (HeatmapColors.Lookup(Colormap)) { }                         // throws on an unknown name
        return this;
    }
}
