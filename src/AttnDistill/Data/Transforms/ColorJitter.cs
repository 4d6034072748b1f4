namespace AttnDistill.Data.Transforms;

/// <summary>
/// torchvision's <c>ColorJitter(brightness, contrast, saturation, hue)</c> on 8-bit pixels: the four
/// adjustments in a random order, each with a uniform factor (brightness, contrast, saturation in
/// [max(0, 1 - x), 1 + x], hue shift in [-h, h]), as PIL's ImageEnhance blends: brightness towards
/// black, contrast towards the mean gray level, saturation towards the gray image, hue rotated in
/// HSV. Saturation and hue leave gray images (one channel, or R = G = B) unchanged, as PIL does.
/// Results are rounded to the nearest byte and clipped; not bit-identical to PIL's fixed-point code.
/// </summary>
public sealed class ColorJitter : IImageTransform
{
    public ColorJitter(double brightness, double contrast, double saturation, double hue)
    {
        if (brightness < 0 || contrast < 0 || saturation < 0) throw new ArgumentOutOfRangeException(nameof(brightness), "colour jitter strengths must be >= 0");
        if (hue is < 0 or > 0.5) throw new ArgumentOutOfRangeException(nameof(hue), $"hue jitter must be in [0, 0.5], got {hue}");
        Brightness = brightness;
        Contrast = contrast;
        Saturation = saturation;
        Hue = hue;
    }

    public double Brightness { get; }
    public double Contrast { get; }
    public double Saturation { get; }
    public double Hue { get; }
    public (int Width, int Height)? OutputSize => null;

    public DecodedImage Apply(DecodedImage image, IRandomSource random)
    {
        // get_params: torch.randperm(4), then one draw per factor, in this order.
        int[] order = { 0, 1, 2, 3 };
        for (int i = order.Length - 1; i > 0; i--)
        {
            int j = random.Integer(0, i + 1);
            (order[i], order[j]) = (order[j], order[i]);
        }
        float b = random.Uniform(Math.Max(0, 1 - Brightness), 1 + Brightness);
        float c = random.Uniform(Math.Max(0, 1 - Contrast), 1 + Contrast);
        float s = random.Uniform(Math.Max(0, 1 - Saturation), 1 + Saturation);
        float h = random.Uniform(-Hue, Hue);
        var px = (byte[])image.Pixels.Clone();
        foreach (int op in order)
        {
            switch (op)
            {
                case 0 when Brightness > 0: Blend(px, 0f, b); break;
                case 1 when Contrast > 0: Blend(px, MathF.Round(MeanGray(px, image.Channels)), c); break;
                case 2 when Saturation > 0 && image.Channels == 3: BlendWithGray(px, s); break;
                case 3 when Hue > 0 && image.Channels == 3: ShiftHue(px, h); break;
            }
        }
        return new DecodedImage(image.Width, image.Height, image.Channels, px);
    }

    static byte Clip(float v) => v <= 0 ? (byte)0 : v >= 255 ? (byte)255 : (byte)MathF.Round(v);

    /// <summary>PIL's Image.blend(degenerate, image, factor) with a constant degenerate image.</summary>
    static void Blend(byte[] px, float degenerate, float factor)
    {
        for (int i = 0; i < px.Length; i++) px[i] = Clip(degenerate + factor * (px[i] - degenerate));
    }

    /// <summary>ITU-R 601-2 luma, PIL's convert("L").</summary>
    static float Luma(byte r, byte g, byte b) => (r * 299 + g * 587 + b * 114) / 1000f;

    static float MeanGray(byte[] px, int channels)
    {
        double sum = 0;
        if (channels == 1) foreach (byte v in px) sum += v;
        else for (int i = 0; i < px.Length; i += 3) sum += MathF.Round(Luma(px[i], px[i + 1], px[i + 2]));
        return (float)(sum / (px.Length / channels));
    }

    static void BlendWithGray(byte[] px, float factor)
    {
        for (int i = 0; i < px.Length; i += 3)
        {
            float gray = MathF.Round(Luma(px[i], px[i + 1], px[i + 2]));
            for (int k = 0; k < 3; k++) px[i + k] = Clip(gray + factor * (px[i + k] - gray));
        }
    }

    static void ShiftHue(byte[] px, float shift)
    {
        for (int i = 0; i < px.Length; i += 3)
        {
            float r = px[i] / 255f, g = px[i + 1] / 255f, bl = px[i + 2] / 255f;
            float max = MathF.Max(r, MathF.Max(g, bl)), min = MathF.Min(r, MathF.Min(g, bl)), d = max - min;
            if (d <= 0) continue;   // gray: no hue to rotate
            float hue = max == r ? (g - bl) / d : max == g ? 2 + (bl - r) / d : 4 + (r - g) / d;
            hue = hue / 6 + shift;
            hue -= MathF.Floor(hue);
            float sat = d / max, val = max;
            float h6 = hue * 6;
            int sector = (int)h6 % 6;
            float f = h6 - MathF.Floor(h6);
            float p = val * (1 - sat), q = val * (1 - sat * f), t = val * (1 - sat * (1 - f));
            (r, g, bl) = sector switch
            {
                0 => (val, t, p), 1 => (q, val, p), 2 => (p, val, t), 3 => (p, q, val), 4 => (t, p, val), _ => (val, p, q),
            };
            px[i] = Clip(r * 255); px[i + 1] = Clip(g * 255); px[i + 2] = Clip(bl * 255);
        }
    }
}
