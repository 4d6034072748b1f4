namespace AttnDistill.Data.Transforms;

/// <summary>
/// torchvision's <c>Resize(size, interpolation=BICUBIC)</c> with an int size: the short side
/// becomes <c>size</c>, the long side <c>int(size * long / short)</c> (truncated), PIL bicubic.
/// </summary>
public sealed class Resize : IImageTransform
{
    public Resize(int shortSide)
    {
        if (shortSide <= 0) throw new ArgumentOutOfRangeException(nameof(shortSide));
        ShortSide = shortSide;
    }

    public int ShortSide { get; }
    public (int Width, int Height)? OutputSize => null;

    /// <summary>The output (width, height) for an input of width x height.</summary>
    public (int Width, int Height) OutputFor(int width, int height)
    {
        bool wide = width > height;
        int shortIn = wide ? height : width, longIn = wide ? width : height;
        int newLong = (int)((double)ShortSide * longIn / shortIn);
        return wide ? (newLong, ShortSide) : (ShortSide, newLong);
    }

    public DecodedImage Apply(DecodedImage image, IRandomSource random)
    {
        var (w, h) = OutputFor(image.Width, image.Height);
        if (w == image.Width && h == image.Height) return image;
        var pixels = PilBicubic.ResizeCrop(image.Pixels, image.Width, image.Height, image.Channels, 0, 0, image.Width, image.Height, w, h);
        return new DecodedImage(w, h, image.Channels, pixels);
    }
}
