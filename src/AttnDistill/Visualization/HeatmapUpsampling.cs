namespace AttnDistill.Visualization;

/// <summary>How a patch-grid map is enlarged to the image: smooth (bicubic) or as blocks of one patch each (nearest, as DINO's figures).</summary>
public enum HeatmapUpsampling
{
    Bicubic,
    Nearest,
}
