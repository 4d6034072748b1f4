namespace AttnDistill.Data;

/// <summary>
/// A decoded 8-bit image in HWC order (row-major, channels interleaved): the form that PIL hands
/// to torchvision's transforms. <see cref="Channels"/> is 3 (RGB) or 1 (grayscale, kept only when
/// a data set is asked to keep it).
/// </summary>
public sealed class DecodedImage
{
    public DecodedImage(int width, int height, int channels, byte[] pixels)
    {
        if (width <= 0 || height <= 0) throw new ArgumentOutOfRangeException(nameof(width), $"image size {width}x{height} must be positive");
        if (channels is not (1 or 3)) throw new ArgumentOutOfRangeException(nameof(channels), $"channels must be 1 or 3, got {channels}");
        if (pixels.Length != (long)width * height * channels)
            throw new ArgumentException($"expected {width}x{height}x{channels} = {(long)width * height * channels} bytes, got {pixels.Length}", nameof(pixels));
        Width = width;
        Height = height;
        Channels = channels;
        Pixels = pixels;
    }

    public int Width { get; }
    public int Height { get; }
    public int Channels { get; }

    /// <summary>HWC bytes, length Width*Height*Channels. Transforms may reuse or replace it.</summary>
    public byte[] Pixels { get; }

    /// <summary>Pixel value at (x, y), channel c (tests and diagnostics only; not for hot paths).</summary>
    public byte At(int x, int y, int c = 0) => Pixels[((long)y * Width + x) * Channels + c];
}
