namespace AttnDistill.Data.Transforms;

/// <summary>
/// DINO's utils.GaussianBlur(p, radius_min, radius_max): with probability p, a Gaussian blur of
/// standard deviation uniform in [radius_min, radius_max] pixels (PIL's ImageFilter.GaussianBlur
/// radius). Separable kernel of radius ceil(3 sigma), edges extended; rounded to bytes.
/// </summary>
public sealed class GaussianBlur : IImageTransform
{
    public GaussianBlur(double p, double radiusMin = 0.1, double radiusMax = 2.0)
    {
        if (!(p >= 0 && p <= 1)) throw new ArgumentOutOfRangeException(nameof(p), $"probability must be in [0, 1], got {p}");
        if (!(radiusMin > 0 && radiusMin <= radiusMax)) throw new ArgumentOutOfRangeException(nameof(radiusMin), $"blur radius range ({radiusMin}, {radiusMax})");
        P = p;
        RadiusMin = radiusMin;
        RadiusMax = radiusMax;
    }

    public double P { get; }
    public double RadiusMin { get; }
    public double RadiusMax { get; }
    public (int Width, int Height)? OutputSize => null;

    public DecodedImage Apply(DecodedImage image, IRandomSource random)
    {
        // DINO draws random.random() <= p, then the radius.
        if (!(random.Unit() <= P)) return image;
        return Blur(image, random.Uniform(RadiusMin, RadiusMax));
    }

    public static DecodedImage Blur(DecodedImage image, double sigma)
    {
        int r = Math.Max(1, (int)Math.Ceiling(3 * sigma));
        var k = new float[2 * r + 1];
        float sum = 0;
        for (int i = -r; i <= r; i++) sum += k[i + r] = (float)Math.Exp(-0.5 * i * i / (sigma * sigma));
        for (int i = 0; i < k.Length; i++) k[i] /= sum;
        int w = image.Width, h = image.Height, c = image.Channels;
        var src = image.Pixels;
        var tmp = new float[src.Length];
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                for (int ch = 0; ch < c; ch++)
                {
                    float acc = 0;
                    for (int i = -r; i <= r; i++) acc += k[i + r] * src[(y * w + Math.Clamp(x + i, 0, w - 1)) * c + ch];
                    tmp[(y * w + x) * c + ch] = acc;
                }
        var dst = new byte[src.Length];
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                for (int ch = 0; ch < c; ch++)
                {
                    float acc = 0;
                    for (int i = -r; i <= r; i++) acc += k[i + r] * tmp[(Math.Clamp(y + i, 0, h - 1) * w + x) * c + ch];
                    dst[(y * w + x) * c + ch] = acc <= 0 ? (byte)0 : acc >= 255 ? (byte)255 : (byte)MathF.Round(acc);
                }
        return new DecodedImage(w, h, c, dst);
    }
}
