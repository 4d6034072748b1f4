namespace AttnDistill.Data.Transforms;

/// <summary>torchvision's <c>RandomGrayscale(p)</c>: with probability p, RGB becomes its luma replicated to 3 channels; one-channel images are left as they are.</summary>
public sealed class RandomGrayscale : IImageTransform
{
    public RandomGrayscale(double p)
    {
        if (!(p >= 0 && p <= 1)) throw new ArgumentOutOfRangeException(nameof(p), $"probability must be in [0, 1], got {p}");
        P = p;
    }

    public double P { get; }
    public (int Width, int Height)? OutputSize => null;

    public DecodedImage Apply(DecodedImage image, IRandomSource random)
    {
        if (!(random.Unit() < P) || image.Channels == 1) return image;
        var src = image.Pixels;
        var dst = new byte[src.Length];
        for (int i = 0; i < src.Length; i += 3)
        {
            // PIL's convert("L"): L = R 299/1000 + G 587/1000 + B 114/1000, rounded.
            byte l = (byte)((src[i] * 299 + src[i + 1] * 587 + src[i + 2] * 114 + 500) / 1000);
            dst[i] = dst[i + 1] = dst[i + 2] = l;
        }
        return new DecodedImage(image.Width, image.Height, 3, dst);
    }
}
