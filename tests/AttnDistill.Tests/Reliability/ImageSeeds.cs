using System.Buffers.Binary;
using SkiaSharp;

namespace AttnDistill.Tests.Reliability;

/// <summary>
/// Small valid images of every format the decoder meets, made here so the fuzzer needs no
/// fixtures: PNG (RGBA from SkiaSharp; RGB, gray, palette and 16-bit, which our own reader
/// decodes, written by hand), JPEG, WebP lossy and lossless (SkiaSharp), BMP and GIF (written by
/// hand: SkiaSharp encodes neither).
/// </summary>
public static class ImageSeeds
{
    public const int Width = 16, Height = 12;

    public static IReadOnlyList<(string Name, string Extension, byte[] Bytes)> All() => new[]
    {
        ("png-rgba", ".png", Skia(SKEncodedImageFormat.Png, 100)),
        ("png-rgb", ".png", HandPng(colorType: 2, channels: 3)),
        ("png-gray", ".png", HandPng(colorType: 0, channels: 1)),
        ("png-palette", ".png", HandPng(colorType: 3, channels: 1)),
        ("png-rgb16", ".png", HandPng(colorType: 2, channels: 3, bitDepth: 16)),
        ("png-gray16", ".png", HandPng(colorType: 0, channels: 1, bitDepth: 16)),
        ("jpeg", ".jpg", Skia(SKEncodedImageFormat.Jpeg, 90)),
        ("webp-lossy", ".webp", Webp(SKWebpEncoderCompression.Lossy)),
        ("webp-lossless", ".webp", Webp(SKWebpEncoderCompression.Lossless)),
        ("bmp", ".bmp", Bmp()),
        ("gif", ".gif", Gif()),
    };

    static SKBitmap Gradient()
    {
        var bmp = new SKBitmap(new SKImageInfo(Width, Height, SKColorType.Rgba8888, SKAlphaType.Unpremul));
        for (int y = 0; y < Height; y++)
            for (int x = 0; x < Width; x++)
                bmp.SetPixel(x, y, new SKColor((byte)(x * 16), (byte)(y * 20), (byte)((x + y) * 7), (byte)(200 + x)));
        return bmp;
    }

    static byte[] Skia(SKEncodedImageFormat format, int quality)
    {
        using var bmp = Gradient();
        using var data = bmp.Encode(format, quality) ?? throw new InvalidOperationException($"SkiaSharp did not encode {format}");
        return data.ToArray();
    }

    static byte[] Webp(SKWebpEncoderCompression compression)
    {
        using var bmp = Gradient();
        using var pixmap = bmp.PeekPixels();
        using var data = pixmap.Encode(new SKWebpEncoderOptions(compression, 90)) ?? throw new InvalidOperationException("SkiaSharp did not encode WebP");
        return data.ToArray();
    }

    /// <summary>A PNG with the given colour type and depth, filter 0 rows (a PLTE of 256 colours for palette images).</summary>
    static byte[] HandPng(byte colorType, int channels, byte bitDepth = 8)
    {
        int bytesPerPixel = channels * bitDepth / 8;
        var rows = new byte[Height * (1 + Width * bytesPerPixel)];
        for (int y = 0, at = 0; y < Height; y++)
        {
            rows[at++] = 0;
            for (int x = 0; x < Width * bytesPerPixel; x++) rows[at++] = (byte)(x * 5 + y * 11);
        }
        var png = HostileFiles.Png(Width, Height, bitDepth, colorType, rows);
        if (colorType != 3) return png;
        // PLTE goes after IHDR (8 + 25 bytes).
        var plte = Enumerable.Range(0, 256).SelectMany(i => new[] { (byte)i, (byte)(255 - i), (byte)(i / 2) }).ToArray();
        using var ms = new MemoryStream();
        ms.Write(png.AsSpan(0, 33));
        Span<byte> len = stackalloc byte[4];
        BinaryPrimitives.WriteInt32BigEndian(len, plte.Length);
        ms.Write(len);
        var typed = "PLTE"u8.ToArray().Concat(plte).ToArray();
        ms.Write(typed);
        BinaryPrimitives.WriteUInt32BigEndian(len, AttnDistill.Checkpoints.Crc32.Compute(typed));
        ms.Write(len);
        ms.Write(png.AsSpan(33));
        return ms.ToArray();
    }

    /// <summary>A 24-bit bottom-up BMP (BITMAPINFOHEADER), rows padded to 4 bytes.</summary>
    static byte[] Bmp()
    {
        int stride = (Width * 3 + 3) & ~3;
        var b = new byte[54 + stride * Height];
        b[0] = (byte)'B';
        b[1] = (byte)'M';
        BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(2), b.Length);
        BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(10), 54);
        BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(14), 40);
        BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(18), Width);
        BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(22), Height);
        BinaryPrimitives.WriteInt16LittleEndian(b.AsSpan(26), 1);
        BinaryPrimitives.WriteInt16LittleEndian(b.AsSpan(28), 24);
        BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(34), stride * Height);
        for (int y = 0; y < Height; y++)
            for (int x = 0; x < Width * 3; x++) b[54 + y * stride + x] = (byte)(x * 5 + y * 9);
        return b;
    }

    /// <summary>
    /// A GIF89a with a 4-colour global table. The LZW stream sends a clear code after every two
    /// literals, so codes stay 3 bits wide and no real compressor is needed.
    /// </summary>
    static byte[] Gif()
    {
        var ms = new MemoryStream();
        ms.Write("GIF89a"u8);
        Span<byte> two = stackalloc byte[2];
        BinaryPrimitives.WriteUInt16LittleEndian(two, Width); ms.Write(two);
        BinaryPrimitives.WriteUInt16LittleEndian(two, Height); ms.Write(two);
        ms.WriteByte(0x81);   // global table, 2 bits per entry (4 colours)
        ms.WriteByte(0);
        ms.WriteByte(0);
        ms.Write(new byte[] { 0, 0, 0, 255, 0, 0, 0, 255, 0, 255, 255, 255 });
        ms.WriteByte(0x2C);
        ms.Write(new byte[4]);
        BinaryPrimitives.WriteUInt16LittleEndian(two, Width); ms.Write(two);
        BinaryPrimitives.WriteUInt16LittleEndian(two, Height); ms.Write(two);
        ms.WriteByte(0);
        ms.WriteByte(2);      // LZW minimum code size
        const int clear = 4, end = 5;
        var codes = new List<int>();
        for (int i = 0; i < Width * Height; i++)
        {
            if (i % 2 == 0) codes.Add(clear);
            codes.Add((i / Width + i % Width) % 4);
        }
        codes.Add(end);
        var packed = new List<byte>();
        int acc = 0, bits = 0;
        foreach (int c in codes)
        {
            acc |= c << bits;
            bits += 3;
            while (bits >= 8) { packed.Add((byte)acc); acc >>= 8; bits -= 8; }
        }
        if (bits > 0) packed.Add((byte)acc);
        for (int at = 0; at < packed.Count; at += 255)
        {
            int n = Math.Min(255, packed.Count - at);
            ms.WriteByte((byte)n);
            ms.Write(packed.GetRange(at, n).ToArray());
        }
        ms.WriteByte(0);
        ms.WriteByte(0x3B);
        return ms.ToArray();
    }
}
