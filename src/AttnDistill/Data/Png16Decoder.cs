using System.Buffers.Binary;
using System.IO.Compression;
using AttnDistill.Checkpoints;

namespace AttnDistill.Data;

/// <summary>
/// Reads PNGs of bit depth 16 to 8-bit RGB as PIL 9.4's <c>Image.open(f).convert("RGB")</c> does
/// (torchvision's ImageFolder loader). SkiaSharp cannot be used for them: it refuses a 16-bit
/// decode of gray PNGs (InvalidConversion) and its 8-bit decode scales by 1/257, where PIL
/// <list type="bullet">
/// <item>opens gray (colour type 0) as mode "I" with the raw value, which convert("RGB") clips to
/// 255 (256, 1000 and 65535 all give 255);</item>
/// <item>opens gray+alpha (type 4) as "RGBA" through rawmode "LA;16B", RGB (type 2) and RGBA (type 6)
/// through "RGB;16B"/"RGBA;16B": each sample's high byte; alpha is dropped without blending.</item>
/// </list>
/// Its leniencies and refusals are PIL's too (tests/fixtures/png16/make_png16_expectations.py shows
/// each): CRCs are checked for the chunks before the first IDAT only; the image data is the run of
/// IDAT chunks, a file may end once it is complete (IDAT's CRC, IEND missing); any non-zero
/// interlace byte means Adam7; a zlib stream that ends cleanly after a whole row leaves the rows
/// below black. Everything else that is broken is an <see cref="InvalidDataException"/> (the data
/// loader's unreadable-image path), never another exception.
/// Not modelled: the content checks of PIL's ancillary-chunk handlers (a tRNS chunk too short,
/// say) and APNG frames (the IDAT image is decoded); a second IHDR is refused.
/// </summary>
internal static class Png16Decoder
{
    static ReadOnlySpan<byte> Signature => new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A };

    /// <summary>The seven Adam7 passes: first column, first row, column step, row step.</summary>
    static readonly (int X0, int Y0, int Dx, int Dy)[] Adam7 =
        { (0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2) };

    static readonly (int X0, int Y0, int Dx, int Dy)[] Progressive = { (0, 0, 1, 1) };

    /// <summary>What the IHDR says, and where the first IDAT chunk starts (its length field).</summary>
    readonly record struct Header(int Width, int Height, byte ColorType, bool Interlaced, int FirstIdat)
    {
        /// <summary>Bytes per pixel: two per sample (gray 1, gray+alpha 2, RGB 3, RGBA 4 samples).</summary>
        public int BytesPerPixel => ColorType switch { 0 => 2, 4 => 4, 2 => 6, _ => 8 };
    }

    /// <summary>
    /// True when the file starts as a PNG whose first chunk, IHDR, says bit depth 16: those come
    /// here. (A PNG whose IHDR is not first goes to SkiaSharp, which refuses it as libpng does.)
    /// </summary>
    public static bool Handles(ReadOnlySpan<byte> b) =>
        b.Length > 24 && b[..8].SequenceEqual(Signature) && b.Slice(12, 4).SequenceEqual("IHDR"u8) && b[24] == 16;

    /// <summary>The size from the header, after the checks the decode makes before any pixel (the budget included).</summary>
    public static (int Width, int Height) ReadSize(ReadOnlySpan<byte> png, string name)
    {
        var h = ReadHeader(png, name);
        return (h.Width, h.Height);
    }

    /// <summary>Decodes to 8-bit RGB as PIL's convert("RGB") of the mode PIL opens the file in.</summary>
    public static DecodedImage Decode(ReadOnlySpan<byte> png, string name)
    {
        var h = ReadHeader(png, name);
        int bpp = h.BytesPerPixel;
        // Rows are unfiltered one at a time into two buffers and converted at once: the 16-bit
        // image is never held whole (8 bytes a pixel for RGBA, where the RGB result takes 3).
        long rowBytes = (long)h.Width * bpp;
        if (rowBytes + 1 > Array.MaxLength)
            throw new ImageTooLargeException($"{name}: a row of this {h.Width}-pixel-wide 16-bit PNG takes {rowBytes} bytes, more than one buffer can hold here.");
        var rgb = new byte[(long)h.Width * h.Height * 3];
        var imageData = ImageData(png, h.FirstIdat);
        using var z = new ZLibStream(new MemoryStream(imageData), CompressionMode.Decompress);
        var cur = new byte[rowBytes + 1];
        var prev = new byte[rowBytes + 1];
        var adler = Adler32.Start();
        int rowsRead = 0;
        foreach (var (x0, y0, dx, dy) in h.Interlaced ? Adam7 : Progressive)
        {
            int passW = h.Width > x0 ? (h.Width - x0 + dx - 1) / dx : 0;
            int passH = h.Height > y0 ? (h.Height - y0 + dy - 1) / dy : 0;
            if (passW == 0 || passH == 0) continue; // an empty pass has no rows, not even filter bytes
            int n = passW * bpp;
            // Each pass starts with a row of zeros above it (the Up, Average and Paeth filters read it).
            Array.Clear(prev, 0, n + 1);
            for (int r = 0; r < passH; r++)
            {
                int got = Read(z, cur.AsSpan(0, n + 1), name);
                if (got == 0 && rowsRead > 0 && EndedCleanly(imageData, adler))
                    return new DecodedImage(h.Width, h.Height, 3, rgb); // PIL: the rows not reached stay black
                if (got < n + 1)
                    throw new InvalidDataException($"{name}: the 16-bit PNG's image data is truncated ({rowsRead} rows decoded)");
                adler.Add(cur.AsSpan(0, n + 1));
                Unfilter(cur.AsSpan(0, n + 1), prev.AsSpan(0, n + 1), bpp, name);
                ToRgb(cur.AsSpan(1, n), h.ColorType, rgb, ((long)(y0 + r * dy) * h.Width + x0) * 3, dx * 3);
                (cur, prev) = (prev, cur);
                rowsRead++;
            }
        }
        // One more read lets the inflater reach the stream's Adler-32: PIL refuses a wrong one
        // ("broken data stream"); more data after the last row is ignored, as PIL ignores it.
        Read(z, stackalloc byte[1], name);
        return new DecodedImage(h.Width, h.Height, 3, rgb);
    }

    /// <summary>Walks the chunks before the first IDAT as PIL's PngImageFile._open does: each CRC checked, IHDR required.</summary>
    static Header ReadHeader(ReadOnlySpan<byte> png, string name)
    {
        if (!Handles(png)) throw new InvalidDataException($"{name}: not a 16-bit PNG");
        Header? header = null;
        int pos = 8;
        while (true)
        {
            if (pos + 8 > png.Length) throw new InvalidDataException($"{name}: the PNG ends before its image data");
            long length = BinaryPrimitives.ReadUInt32BigEndian(png[pos..]);
            var type = png.Slice(pos + 4, 4);
            // PIL's is_cid: four word characters, or "broken PNG file".
            foreach (byte c in type)
                if (!(char.IsAsciiLetterOrDigit((char)c) || c == '_')) throw new InvalidDataException($"{name}: broken PNG chunk at byte {pos}");
            if (type.SequenceEqual("IDAT"u8)) break;
            if (type.SequenceEqual("IEND"u8)) throw new InvalidDataException($"{name}: the PNG has no image data (IEND before any IDAT)");
            if (pos + 12 + length > png.Length) throw new InvalidDataException($"{name}: the PNG is truncated in its {System.Text.Encoding.ASCII.GetString(type)} chunk");
            var data = png.Slice(pos + 8, (int)length);
            uint stored = BinaryPrimitives.ReadUInt32BigEndian(png[(pos + 8 + (int)length)..]);
            if (Crc32.Compute(data, Crc32.Compute(type)) != stored)
                throw new InvalidDataException($"{name}: bad CRC in the PNG's {System.Text.Encoding.ASCII.GetString(type)} chunk");
            if (type.SequenceEqual("IHDR"u8))
            {
                if (header != null) throw new InvalidDataException($"{name}: the PNG has a second IHDR chunk");
                header = ParseIhdr(data, name);
            }
            pos += 12 + (int)length;
        }
        if (header is not { } h) throw new InvalidDataException($"{name}: the PNG has no IHDR chunk");
        // Before any pixel memory, as for every other format, and once the chunks before IDAT have
        // passed, as PIL raises DecompressionBombError after Image.open has read them.
        ImageDecoder.CheckPixelBudget(h.Width, h.Height, name);
        return h with { FirstIdat = pos };
    }

    static Header ParseIhdr(ReadOnlySpan<byte> s, string name)
    {
        if (s.Length < 13) throw new InvalidDataException($"{name}: truncated IHDR chunk");
        long w = BinaryPrimitives.ReadUInt32BigEndian(s), hgt = BinaryPrimitives.ReadUInt32BigEndian(s[4..]);
        byte depth = s[8], colorType = s[9];
        // PIL has no mode for 16-bit palette (3) or the undefined colour types: "cannot identify image file".
        if (depth != 16 || colorType is not (0 or 2 or 4 or 6))
            throw new InvalidDataException($"{name}: a PNG of bit depth {depth} and colour type {colorType} (PIL cannot identify it)");
        if (s[11] != 0) throw new InvalidDataException($"{name}: unknown PNG filter method {s[11]}");
        if (w == 0 || hgt == 0) throw new InvalidDataException($"{name}: image has no pixels ({w}x{hgt})");
        // Past 2^31 - 1 (the PNG limit) the product could overflow the budget check's arithmetic.
        if (w > int.MaxValue || hgt > int.MaxValue)
            throw new ImageTooLargeException($"{name}: the header claims {w}x{hgt} pixels, more than a PNG can hold: a header that lies; remove the file.");
        // s[10], the compression method, is not read by PIL either; any non-zero interlace byte is Adam7 to PIL.
        return new Header((int)w, (int)hgt, colorType, s[12] != 0, 0);
    }

    /// <summary>
    /// The zlib stream: the data of the IDAT chunks from the first one on, up to the first chunk of
    /// another type or the end of the file. Their CRCs are not checked, nor need they be there (PIL
    /// reads IDAT the same way); a length past the end of the file takes what is there.
    /// </summary>
    static byte[] ImageData(ReadOnlySpan<byte> png, int pos)
    {
        using var ms = new MemoryStream();
        while (pos + 8 <= png.Length && png.Slice(pos + 4, 4).SequenceEqual("IDAT"u8))
        {
            long length = BinaryPrimitives.ReadUInt32BigEndian(png[pos..]);
            int start = pos + 8;
            int take = (int)Math.Min(length, png.Length - start);
            ms.Write(png.Slice(start, take));
            if (start + length + 4 > png.Length) break;
            pos = (int)(start + length + 4);
        }
        return ms.ToArray();
    }

    /// <summary>
    /// Whether the zlib stream really ended (rather than the data being cut): ZLibStream says neither,
    /// but a stream that ended cleanly closes with the Adler-32 of all it gave, in its last four bytes.
    /// </summary>
    static bool EndedCleanly(byte[] data, Adler32 adler)
    {
        return data.Length >= 6 && BinaryPrimitives.ReadUInt32BigEndian(data.AsSpan(data.Length - 4)) == adler.Value;
    }

    /// <summary>Fills <paramref name="buffer"/> from the inflater as far as it goes; a corrupt stream is unreadable.</summary>
    static int Read(ZLibStream z, Span<byte> buffer, string name)
    {
        int got = 0;
        try
        {
            while (got < buffer.Length)
            {
                int n = z.Read(buffer[got..]);
                if (n == 0) break;
                got += n;
            }
        }
        catch (InvalidDataException e)
        {
            throw new InvalidDataException($"{name}: the 16-bit PNG's image data is corrupt (broken zlib stream)", e);
        }
        return got;
    }

    /// <summary>
    /// Undoes the row's filter in place (filter byte first, then the row). The five PNG filters
    /// predict each byte from the byte one pixel left (a), the byte above (b) and the one above-left
    /// (c): with 16-bit samples the pixel is 2 to 8 bytes, so high bytes are predicted from high bytes.
    /// </summary>
    static void Unfilter(Span<byte> row, ReadOnlySpan<byte> above, int bpp, string name)
    {
        var x = row[1..];
        var b = above[1..];
        switch (row[0])
        {
            case 0: break;
            case 1:
                for (int i = bpp; i < x.Length; i++) x[i] += x[i - bpp];
                break;
            case 2:
                for (int i = 0; i < x.Length; i++) x[i] += b[i];
                break;
            case 3:
                for (int i = 0; i < x.Length; i++) x[i] += (byte)(((i >= bpp ? x[i - bpp] : 0) + b[i]) >> 1);
                break;
            case 4:
                for (int i = 0; i < x.Length; i++)
                    x[i] += i >= bpp ? Paeth(x[i - bpp], b[i], b[i - bpp]) : b[i];
                break;
            default:
                // PIL: "unrecognized data stream contents when reading image file".
                throw new InvalidDataException($"{name}: unknown PNG filter type {row[0]}");
        }
    }

    static byte Paeth(byte a, byte b, byte c)
    {
        int p = a + b - c;
        int pa = Math.Abs(p - a), pb = Math.Abs(p - b), pc = Math.Abs(p - c);
        return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
    }

    /// <summary>
    /// One unfiltered row (big-endian samples) to RGB bytes at <paramref name="at"/>, a pixel every
    /// <paramref name="step"/> bytes (Adam7 passes skip columns): gray is clipped (mode "I"), the
    /// other types keep each sample's high byte (PIL's ";16B" rawmodes), alpha dropped.
    /// </summary>
    static void ToRgb(ReadOnlySpan<byte> row, byte colorType, byte[] rgb, long at, int step)
    {
        switch (colorType)
        {
            case 0:
                for (int i = 0; i < row.Length; i += 2, at += step)
                {
                    byte v = row[i] != 0 ? (byte)255 : row[i + 1];
                    rgb[at] = rgb[at + 1] = rgb[at + 2] = v;
                }
                break;
            case 4:
                for (int i = 0; i < row.Length; i += 4, at += step)
                    rgb[at] = rgb[at + 1] = rgb[at + 2] = row[i];
                break;
            default: // 2 (RGB) and 6 (RGBA): 6 or 8 bytes a pixel
                int bpp = colorType == 2 ? 6 : 8;
                for (int i = 0; i < row.Length; i += bpp, at += step)
                {
                    rgb[at] = row[i];
                    rgb[at + 1] = row[i + 2];
                    rgb[at + 2] = row[i + 4];
                }
                break;
        }
    }
}
