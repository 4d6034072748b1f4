using SkiaSharp;

namespace AttnDistill.Data;

/// <summary>
/// Decodes JPEG, PNG, BMP and WebP files to RGB bytes with SkiaSharp, with the outcome of PIL's
/// <c>Image.open(f).convert("RGB")</c> (torchvision's default loader): grayscale is replicated to
/// three channels, CMYK is converted by the decoder, an alpha channel is dropped without blending
/// (PIL does not composite either), and the EXIF orientation is ignored (PIL does not apply it).
/// </summary>
public static class ImageDecoder
{
    /// <summary>File name extensions an ImageFolder picks up (lower case, with the dot).</summary>
    public static IReadOnlyList<string> Extensions { get; } = new[] { ".jpg", ".jpeg", ".png", ".bmp", ".webp" };

    /// <summary>True when the name ends with one of <see cref="Extensions"/> (case-insensitive, as torchvision).</summary>
    public static bool HasImageExtension(string fileName) =>
        Extensions.Any(e => fileName.EndsWith(e, StringComparison.OrdinalIgnoreCase));

    /// <summary>Decodes a file to RGB. Throws <see cref="InvalidDataException"/> when it is not a readable image.</summary>
    public static DecodedImage DecodeFile(string path) => Decode(File.ReadAllBytes(path), path);

    /// <summary>Decodes encoded bytes to RGB. <paramref name="name"/> only serves error messages.</summary>
    public static DecodedImage Decode(ReadOnlySpan<byte> encoded, string name = "image")
    {
        if (encoded.Length == 0) throw new InvalidDataException($"{name}: empty file");
        unsafe
        {
            fixed (byte* p = encoded)
            {
                using var data = SKData.Create((IntPtr)p, encoded.Length);
                using var codec = SKCodec.Create(data)
                    ?? throw new InvalidDataException($"{name}: not an image SkiaSharp can read (JPEG, PNG, BMP, WebP)");
                int w = codec.Info.Width, h = codec.Info.Height;
                if (w <= 0 || h <= 0) throw new InvalidDataException($"{name}: image has no pixels ({w}x{h})");
                // Unpremultiplied RGBA: RGB values stay as stored when alpha < 255 (PIL drops alpha the same way).
                var info = new SKImageInfo(w, h, SKColorType.Rgba8888, SKAlphaType.Unpremul);
                var rgba = new byte[(long)w * h * 4];
                SKCodecResult result;
                fixed (byte* dst = rgba)
                    result = codec.GetPixels(info, (IntPtr)dst);
                // IncompleteInput: a truncated file. PIL refuses those too (LOAD_TRUNCATED_IMAGES is off by default).
                if (result != SKCodecResult.Success)
                    throw new InvalidDataException($"{name}: decoding failed ({result})");
                return new DecodedImage(w, h, 3, RgbaToRgb(rgba, w * h));
            }
        }
    }

    /// <summary>Reads only the header: the image size, or null when the file is not a readable image.</summary>
    public static (int Width, int Height)? TryReadSize(string path)
    {
        try
        {
            using var stream = File.OpenRead(path);
            if (stream.Length == 0) return null;
            using var codec = SKCodec.Create(stream);
            if (codec == null) return null;
            return (codec.Info.Width, codec.Info.Height);
        }
        catch (IOException) { return null; }
        catch (UnauthorizedAccessException) { return null; }
    }

    private static byte[] RgbaToRgb(byte[] rgba, int pixelCount)
    {
        // Per-pixel byte shuffle of the decoder's output (not tensor data): drop every fourth byte.
        var rgb = new byte[(long)pixelCount * 3];
        for (int i = 0, s = 0, d = 0; i < pixelCount; i++, s += 4, d += 3)
        {
            rgb[d] = rgba[s];
            rgb[d + 1] = rgba[s + 1];
            rgb[d + 2] = rgba[s + 2];
        }
        return rgb;
    }
}
