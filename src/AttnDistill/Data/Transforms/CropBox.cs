namespace AttnDistill.Data.Transforms;

/// <summary>A crop in pixels, in torchvision's order (top, left, height, width).</summary>
public readonly record struct CropBox(int Top, int Left, int Height, int Width);
