namespace AttnDistill.Data.Transforms;

/// <summary>
/// torchvision's <c>RandomResizedCrop(size, scale, ratio, interpolation=BICUBIC)</c>: a box of random
/// area fraction and log-uniform aspect ratio (10 tries, then a central fallback), resized to
/// size x size with PIL's bicubic filter.
/// </summary>
public sealed class RandomResizedCrop : IImageTransform
{
    /// <param name="size">Output side.</param>
    /// <param name="scaleMin">Smallest area fraction: 0.2 (MAE/DINO-style default here) or 0.08 (torchvision's).</param>
    /// <param name="scaleMax">Largest area fraction.</param>
    /// <param name="ratioMin">Smallest aspect ratio w/h.</param>
    /// <param name="ratioMax">Largest aspect ratio w/h.</param>
    public RandomResizedCrop(int size, double scaleMin = 0.2, double scaleMax = 1.0, double ratioMin = 3.0 / 4.0, double ratioMax = 4.0 / 3.0)
    {
        if (size <= 0) throw new ArgumentOutOfRangeException(nameof(size));
        if (!(scaleMin > 0 && scaleMin <= scaleMax)) throw new ArgumentOutOfRangeException(nameof(scaleMin), $"scale ({scaleMin}, {scaleMax})");
        if (!(ratioMin > 0 && ratioMin <= ratioMax)) throw new ArgumentOutOfRangeException(nameof(ratioMin), $"ratio ({ratioMin}, {ratioMax})");
        Size = size;
        Scale = (scaleMin, scaleMax);
        Ratio = (ratioMin, ratioMax);
    }

    public int Size { get; }
    public (double Min, double Max) Scale { get; }
    public (double Min, double Max) Ratio { get; }
    public (int Width, int Height)? OutputSize => (Size, Size);

    public DecodedImage Apply(DecodedImage image, IRandomSource random)
    {
        var box = SampleBox(image.Width, image.Height, Scale, Ratio, random);
        var pixels = PilBicubic.ResizeCrop(image.Pixels, image.Width, image.Height, image.Channels,
            box.Left, box.Top, box.Width, box.Height, Size, Size);
        return new DecodedImage(Size, Size, image.Channels, pixels);
    }

    /// <summary>
    /// torchvision's <c>RandomResizedCrop.get_params</c>, draw for draw: the area fraction and the
    /// log-ratio are float32 draws (as <c>torch.empty(1).uniform_</c>), the sides are rounded half
    /// to even (Python's <c>round</c>), and the offsets are <c>torch.randint</c> draws.
    /// </summary>
    public static CropBox SampleBox(int width, int height, (double Min, double Max) scale, (double Min, double Max) ratio, IRandomSource random)
    {
        double area = (double)height * width;
        // torch.log(torch.tensor(ratio)): float32 logs of float32 ratios.
        float logLo = MathF.Log((float)ratio.Min), logHi = MathF.Log((float)ratio.Max);
        for (int attempt = 0; attempt < 10; attempt++)
        {
            double targetArea = area * random.Uniform(scale.Min, scale.Max);
            double aspect = MathF.Exp(random.Uniform(logLo, logHi));
            int w = (int)Math.Round(Math.Sqrt(targetArea * aspect));
            int h = (int)Math.Round(Math.Sqrt(targetArea / aspect));
            if (0 < w && w <= width && 0 < h && h <= height)
            {
                int top = random.Integer(0, height - h + 1);
                int left = random.Integer(0, width - w + 1);
                return new CropBox(top, left, h, w);
            }
        }
        // Fallback to a central crop, clamped to the ratio range.
        double inRatio = (double)width / height;
        int cw, ch;
        if (inRatio < Math.Min(ratio.Min, ratio.Max))
        {
            cw = width;
            ch = (int)Math.Round(cw / Math.Min(ratio.Min, ratio.Max));
        }
        else if (inRatio > Math.Max(ratio.Min, ratio.Max))
        {
            ch = height;
            cw = (int)Math.Round(ch * Math.Max(ratio.Min, ratio.Max));
        }
        else
        {
            cw = width;
            ch = height;
        }
        return new CropBox((height - ch) / 2, (width - cw) / 2, ch, cw);
    }
}
