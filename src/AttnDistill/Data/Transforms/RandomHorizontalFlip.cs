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
        var src = image.Pixels;
        var dst = new byte[src.Length];
        for (int y = 0; y < image.Height; y++)
        {
            int row = y * stride;
            for (int x = 0; x < w; x++)
                Buffer.BlockCopy(src, row + x * c, dst, row + (w - 1 - x) * c, c);
        }
        return new DecodedImage(w, image.Height, c, dst);
    }
}
