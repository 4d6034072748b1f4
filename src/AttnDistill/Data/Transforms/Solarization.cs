namespace AttnDistill.Data.Transforms;

/// <summary>DINO's utils.Solarization(p): with probability p, PIL's ImageOps.solarize (threshold 128: every value >= 128 becomes 255 - value).</summary>
public sealed class Solarization : IImageTransform
{
    public Solarization(double p)
    {
        if (!(p >= 0 && p <= 1)) throw new ArgumentOutOfRangeException(nameof(p), $"probability must be in [0, 1], got {p}");
        P = p;
    }

    public double P { get; }
    public (int Width, int Height)? OutputSize => null;

    public DecodedImage Apply(DecodedImage image, IRandomSource random)
    {
        if (!(random.Unit() < P)) return image;
        var dst = new byte[image.Pixels.Length];
        for (int i = 0; i < dst.Length; i++) dst[i] = image.Pixels[i] >= 128 ? (byte)(255 - image.Pixels[i]) : image.Pixels[i];
        return new DecodedImage(image.Width, image.Height, image.Channels, dst);
    }
}
