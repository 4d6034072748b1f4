namespace AttnDistill.Data.Transforms;

/// <summary>torchvision's <c>RandomHorizontalFlip(p)</c>: mirrors left-right when <c>torch.rand(1) &lt; p</c>.</summary>
public sealed class RandomHorizontalFlip : IImageTransform
{
    public RandomHorizontalFlip(double p = 0.5)
    {
        if (!(p >= 0 && p <= 1)) throw new ArgumentOutOfRangeException(nameof(p));
        P = p;
    }

    public double P { get; }
    public (int Width, int Height)? OutputSize => null;

    public DecodedImage Apply(DecodedImage image, IRandomSource random) =>
        random.Unit() < P ? Flip(image) : image;

    /// <summary>A left-right mirror image (new buffer).</summary>
    public static DecodedImage Flip(DecodedImage image)
    {
        int w = image.Width, c = image.Channels, stride = w * c;
        var dst = new byte[image.Pixels.Length];
        unsafe
        {
            fixed (byte* s0 = image.Pixels, d0 = dst)
            {
                for (int y = 0; y < image.Height; y++)
                {
                    byte* from = s0 + (long)y * stride;
                    byte* to = d0 + (long)y * stride + stride - c; // last pixel of the row
                    for (int x = 0; x < w; x++, from += c, to -= c)
                        for (int k = 0; k < c; k++) to[k] = from[k];
                }
            }
        }
        return new DecodedImage(w, image.Height, c, dst);
    }
}
