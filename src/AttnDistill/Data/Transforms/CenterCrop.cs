namespace AttnDistill.Data.Transforms;

/// <summary>
/// torchvision's <c>CenterCrop(size)</c>: the top-left corner is <c>round((H - size) / 2)</c>,
/// <c>round((W - size) / 2)</c> (half to even); an image smaller than the crop is zero-padded first,
/// as torchvision does.
/// </summary>
public sealed class CenterCrop : IImageTransform
{
    public CenterCrop(int size)
    {
        if (size <= 0) throw new ArgumentOutOfRangeException(nameof(size));
        Size = size;
    }

    public int Size { get; }
    public (int Width, int Height)? OutputSize => (Size, Size);

    public DecodedImage Apply(DecodedImage image, IRandomSource random)
    {
        if (image.Width < Size || image.Height < Size) image = PadTo(image, Size);
        if (image.Width == Size && image.Height == Size) return image;
        int top = (int)Math.Round((image.Height - Size) / 2.0);
        int left = (int)Math.Round((image.Width - Size) / 2.0);
        int c = image.Channels;
        var dst = new byte[Size * Size * c];
        for (int y = 0; y < Size; y++)
            Array.Copy(image.Pixels, ((top + y) * image.Width + left) * c, dst, y * Size * c, Size * c);
        return new DecodedImage(Size, Size, c, dst);
    }

    private static DecodedImage PadTo(DecodedImage image, int size)
    {
        // torchvision: pad left/top by (size - w) // 2, right/bottom by the rest.
        int w = Math.Max(size, image.Width), h = Math.Max(size, image.Height), c = image.Channels;
        int padLeft = (w - image.Width) / 2, padTop = (h - image.Height) / 2;
        var dst = new byte[w * h * c];
        for (int y = 0; y < image.Height; y++)
            Array.Copy(image.Pixels, y * image.Width * c, dst, ((padTop + y) * w + padLeft) * c, image.Width * c);
        return new DecodedImage(w, h, c, dst);
    }
}
