using SkiaSharp;

namespace AttnDistill.Data;

/// <summary>
/// Decodes JPEG, PNG, BMP and WebP files to RGB bytes with SkiaSharp, with the outcome of PIL's
/// <c>Image.open(f).convert("RGB")</c> (torchvision's default loader): grayscale is replicated to
/// three channels, CMYK is converted by the decoder, an alpha channel is dropped without blending
/// (PIL does not composite either), and the EXIF orientation is ignored (PIL does not apply it).
/// 16-bit PNGs are read by <see cref="Png16Decoder"/>, as PIL converts them (gray clipped to 255).
/// </summary>
public static class ImageDecoder
{
    /// <summary>
    /// File name extensions an ImageFolder picks up (lower case, with the dot): torchvision's
    /// IMG_EXTENSIONS, so item i is the same file. .tif/.tiff/.ppm/.pgm are listed as torchvision
    /// lists them but no codec here reads them: they count as unreadable (named and counted), never
    /// silently dropped. GIF is not in torchvision's list: see <see cref="IgnoredImageExtensions"/>.
    /// </summary>
    public static IReadOnlyList<string> Extensions { get; } = new[] { ".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp" };

    /// <summary>Image files torchvision's ImageFolder does not list (so neither do we); `data inspect` counts them so they are not missed without a word.</summary>
    public static IReadOnlyList<string> IgnoredImageExtensions { get; } = new[] { ".gif" };

    /// <summary>Extensions of <see cref="Extensions"/> no decoder here reads.</summary>
    static readonly string[] NoCodec = { ".tif", ".tiff", ".ppm", ".pgm" };

    /// <summary>True when the name ends with one of <see cref="Extensions"/> (case-insensitive, as torchvision).</summary>
    public static bool HasImageExtension(string fileName) =>
        Extensions.Any(e => fileName.EndsWith(e, StringComparison.OrdinalIgnoreCase));

    /// <summary>PIL's default <c>Image.MAX_IMAGE_PIXELS</c> (1024 x 1024 x 1024 / 4 / 3).</summary>
    public const long DefaultMaxImagePixels = 89_478_485;

    /// <summary>
    /// The decode budget (<c>--max-image-pixels</c>, process-wide as PIL's <c>Image.MAX_IMAGE_PIXELS</c>):
    /// an image whose header claims more than twice this many pixels is refused before any pixel
    /// memory is taken, as PIL raises <c>DecompressionBombError</c>; 0 turns the check off.
    /// </summary>
    public static long MaxImagePixels { get; set; } = DefaultMaxImagePixels;

    /// <summary>Throws <see cref="ImageTooLargeException"/> when a w x h header is over the budget (or cannot be held at all).</summary>
    public static void CheckPixelBudget(long width, long height, string name)
    {
        long pixels = width * height;
        // Our buffers are .NET arrays: 4 bytes a pixel must stay under 2^31 whatever the budget.
        const long HardLimit = int.MaxValue / 4;
        long limit = MaxImagePixels > 0 ? Math.Min(2 * MaxImagePixels, HardLimit) : HardLimit;
        if (pixels > limit)
            throw new ImageTooLargeException(
                $"{name}: the header claims {width}x{height} = {pixels} pixels, more than {limit}" +
                (limit < HardLimit ? $" (twice --max-image-pixels {MaxImagePixels}, PIL's DecompressionBombError)" : " (the most one image can hold here)") +
                ": a decompression bomb or a header that lies; remove the file, or raise --max-image-pixels (0 = no limit) if the image is real.");
    }

    /// <summary>Decodes a file to RGB. Throws <see cref="InvalidDataException"/> when it is not a readable image.</summary>
    public static DecodedImage DecodeFile(string path)
    {
        // A FIFO or device among the images would block or never end: unreadable, not opened.
        if (RegularFile.Problem(path) is { } problem) throw new InvalidDataException($"{path} {problem}");
        return Decode(File.ReadAllBytes(path), path);
    }

    /// <summary>True when the system's TurboJPEG library was found (install Debian's libturbojpeg0 for it).</summary>
    public static bool TurboJpegAvailable => TurboJpeg.Available;

    /// <summary>
    /// Decodes encoded bytes to RGB. JPEGs go through the system's TurboJPEG (libturbojpeg.so.0)
    /// when it is installed, otherwise, and for everything else, through SkiaSharp: both give PIL's
    /// pixels; TurboJPEG is several times faster. <paramref name="name"/> only serves error messages.
    /// </summary>
    public static DecodedImage Decode(ReadOnlySpan<byte> encoded, string name = "image")
    {
        if (encoded.Length == 0) throw new InvalidDataException($"{name}: empty file");
        if (TurboJpeg.LooksLikeJpeg(encoded) && TurboJpeg.TryDecode(encoded, name) is { } fast) return fast;
        return DecodeWithSkia(encoded, name);
    }

    /// <summary>
    /// Decodes without TurboJPEG (what <see cref="Decode"/> falls back to): SkiaSharp, except for
    /// 16-bit PNGs, which SkiaSharp decodes unlike PIL (or refuses): <see cref="Png16Decoder"/> reads those.
    /// </summary>
    public static DecodedImage DecodeWithSkia(ReadOnlySpan<byte> encoded, string name = "image")
    {
        if (encoded.Length == 0) throw new InvalidDataException($"{name}: empty file");
        if (Png16Decoder.Handles(encoded)) return Png16Decoder.Decode(encoded, name);
        unsafe
        {
            fixed (byte* p = encoded)
            {
                using var data = SKData.Create((IntPtr)p, encoded.Length);
                using var codec = SKCodec.Create(data)
                    ?? throw new InvalidDataException(NoCodec.Any(e => name.EndsWith(e, StringComparison.OrdinalIgnoreCase))
                        ? $"{name}: TIFF/PPM/PGM files have no decoder in this build (torchvision lists them): convert them to PNG"
                        : $"{name}: not an image SkiaSharp can read (JPEG, PNG, BMP, WebP, GIF)");
                int w = codec.Info.Width, h = codec.Info.Height;
                if (w <= 0 || h <= 0) throw new InvalidDataException($"{name}: image has no pixels ({w}x{h})");
                CheckPixelBudget(w, h, name);
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

    /// <summary>
    /// Reads only the header: the image size, or null when the file is not a readable image. A
    /// header over the decode budget throws <see cref="ImageTooLargeException"/>.
    /// </summary>
    public static (int Width, int Height)? TryReadSize(string path)
    {
        if (RegularFile.Of(path) != RegularFile.Kind.Regular) return null;
        try
        {
            using var stream = File.OpenRead(path);
            if (stream.Length == 0) return null;
            // 16-bit PNGs (rare) are read whole: their header is checked as their decode checks it.
            Span<byte> head = stackalloc byte[26];
            // (An InvalidDataException is an IOException: null below.)
            if (stream.ReadAtLeast(head, head.Length, throwOnEndOfStream: false) == head.Length && Png16Decoder.Handles(head))
                return Png16Decoder.ReadSize(File.ReadAllBytes(path), path);
            stream.Position = 0;
            using var codec = SKCodec.Create(stream);
            if (codec == null) return null;
            CheckPixelBudget(codec.Info.Width, codec.Info.Height, path);
            return (codec.Info.Width, codec.Info.Height);
        }
        catch (IOException e) when (e is not ImageTooLargeException) { return null; }
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
