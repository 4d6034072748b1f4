using System.Buffers.Binary;
using AttnDistill.Checkpoints;
using AttnDistill.Data;

namespace AttnDistill.Tests.Reliability;

/// <summary>
/// Image files whose headers lie: PNG (8- and 16-bit), JPEG, BMP, GIF and WebP seeds
/// (<see cref="ImageSeeds"/>) with their dimension fields, chunk and segment lengths, CRCs and PNG
/// header fields rewritten (the PNG CRC mostly recomputed so the lie gets past it), huge declared
/// sizes, truncation and raw damage. Each case goes through <see cref="ImageDecoder.DecodeFile"/>,
/// the call an ImageFolder makes for every item, and the header-only
/// <see cref="ImageDecoder.TryReadSize"/> of `data inspect`. A case passes when it decodes to an
/// image within the pixel budget, or is refused with an exception the data loader counts as an
/// unreadable file (<see cref="InvalidDataException"/>, <see cref="IOException"/>) or the budget's
/// <see cref="ImageTooLargeException"/>, naming the file. No xunit here.
/// </summary>
public static class ImageFuzzer
{
    public static readonly string[] Kinds = { "img-dims", "img-huge", "img-length", "img-crc", "img-png-fields", "img-truncate", "img-bitflip", "img-splice" };

    /// <summary>A field in a header: where, how wide, which byte order.</summary>
    readonly record struct Field(int Offset, int Size, bool BigEndian);

    /// <param name="pixelBudget">Set as <see cref="ImageDecoder.MaxImagePixels"/> for the run (restored after): a lie under twice it is decoded for real.</param>
    public static FuzzReport Run(int cases, int randomSeed, string workDir, long pixelBudget, TimeSpan timeout, Action<string>? log = null)
    {
        Directory.CreateDirectory(workDir);
        var seeds = ImageSeeds.All();
        long before = ImageDecoder.MaxImagePixels;
        ImageDecoder.MaxImagePixels = pixelBudget;
        try
        {
            return FuzzLoop.Run(cases, randomSeed, (i, rng) =>
            {
                var (name, ext, bytes) = seeds[i % seeds.Count];
                var (kind, mutated) = Mutate(name, bytes, rng, pixelBudget);
                string path = Path.Combine(workDir, $"case{i:D5}{ext}");
                File.WriteAllBytes(path, mutated);
                return new FuzzCase(kind, $"{name}, {mutated.Length} bytes", () => Load(path, pixelBudget), e => Judge(e, path), () => File.Delete(path));
            }, timeout, log);
        }
        finally { ImageDecoder.MaxImagePixels = before; }
    }

    /// <summary>Decodes as the data loader does; an image over the budget that still came out is a failure.</summary>
    static void Load(string path, long budget)
    {
        try { ImageDecoder.TryReadSize(path); }
        catch (ImageTooLargeException) { }
        var img = ImageDecoder.DecodeFile(path);
        if ((long)img.Width * img.Height > 2 * budget)
            throw new InvalidOperationException($"decoded {img.Width}x{img.Height}, over twice the budget {budget}");
    }

    static string? Judge(Exception e, string path) =>
        e is InvalidDataException or IOException or UnauthorizedAccessException && e.Message.Contains(path, StringComparison.Ordinal) ? null : FuzzLoop.Describe(e);

    public static (string Kind, byte[] Bytes) Mutate(string seedName, byte[] seed, Random rng, long budget)
    {
        var b = (byte[])seed.Clone();
        string kind = Kinds[rng.Next(Kinds.Length)];
        bool png = seedName.StartsWith("png", StringComparison.Ordinal);
        if (kind == "img-png-fields" && !png) kind = "img-dims";
        if (kind == "img-crc" && !png) kind = "img-length";
        long side = (long)Math.Sqrt(2.0 * budget);
        switch (kind)
        {
            case "img-dims":
            case "img-huge":
            {
                var fields = Dims(seedName, b);
                if (fields.Count == 0) goto default;
                foreach (var f in fields.Where(_ => rng.Next(3) != 0).DefaultIfEmpty(fields[0]))
                {
                    long v = kind == "img-huge"
                        ? new[] { 0x7fffL, 0xffffL, 0x7fffffffL, 0xffffffffL, 0x80000000L, 1L << 20, 16383, 16384 }[rng.Next(8)]
                        : new[] { 0L, 1, 2, ImageSeeds.Width + 1, 2 * ImageSeeds.Width, 255, 256, 4096, side, side + 1, side - 1, 3 }[rng.Next(12)];
                    Write(b, f, v);
                }
                break;
            }
            case "img-length":
            {
                var fields = Lengths(seedName, b);
                if (fields.Count == 0) goto default;
                var f = fields[rng.Next(fields.Count)];
                long honest = Read(b, f);
                Write(b, f, new[] { 0L, 1, honest + 1, honest - 1, honest * 2, 0x7fffffffL, 0xffffffffL, b.Length, b.Length * 4L, 0xffffL }[rng.Next(10)]);
                break;
            }
            case "img-crc":
            {
                var crcs = PngChunks(b).Select(c => c.Offset + 8 + c.Length).Where(o => o + 4 <= b.Length).ToList();
                b[crcs[rng.Next(crcs.Count)] + rng.Next(4)] ^= (byte)(1 << rng.Next(8));
                return (kind, b);
            }
            case "img-png-fields":
                // bit depth, colour type, compression, filter, interlace: legal and illegal combinations.
                b[24] = new byte[] { 1, 2, 4, 8, 16, 0, 3, 32 }[rng.Next(8)];
                if (rng.Next(2) == 0) b[25] = new byte[] { 0, 2, 3, 4, 6, 1, 7 }[rng.Next(7)];
                if (rng.Next(3) == 0) b[26 + rng.Next(3)] = (byte)rng.Next(3);
                break;
            case "img-truncate":
                return (kind, b[..rng.Next(b.Length)]);
            case "img-bitflip":
                for (int k = 0, n = 1 + rng.Next(8); k < n; k++) b[rng.Next(b.Length)] ^= (byte)(1 << rng.Next(8));
                return (kind, b);
            default:
            {
                // A run of bytes copied from elsewhere in the file: plausible structure in the wrong place.
                int len = 1 + rng.Next(Math.Min(32, b.Length)), from = rng.Next(b.Length - len + 1), to = rng.Next(b.Length - len + 1);
                Array.Copy(seed, from, b, to, len);
                return ("img-splice", b);
            }
        }
        // Most PNG lies get a valid CRC, so the decoder meets the lie rather than the checksum.
        if (png && rng.Next(4) != 0) FixPngCrcs(b);
        return (kind, b);
    }

    static long Read(byte[] b, Field f) => f.Size switch
    {
        1 => b[f.Offset],
        2 => f.BigEndian ? BinaryPrimitives.ReadUInt16BigEndian(b.AsSpan(f.Offset)) : BinaryPrimitives.ReadUInt16LittleEndian(b.AsSpan(f.Offset)),
        3 => b[f.Offset] | b[f.Offset + 1] << 8 | b[f.Offset + 2] << 16,
        _ => f.BigEndian ? BinaryPrimitives.ReadUInt32BigEndian(b.AsSpan(f.Offset)) : BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan(f.Offset)),
    };

    static void Write(byte[] b, Field f, long v)
    {
        switch (f.Size)
        {
            case 1: b[f.Offset] = (byte)v; break;
            case 2:
                if (f.BigEndian) BinaryPrimitives.WriteUInt16BigEndian(b.AsSpan(f.Offset), (ushort)v);
                else BinaryPrimitives.WriteUInt16LittleEndian(b.AsSpan(f.Offset), (ushort)v);
                break;
            case 3:
                b[f.Offset] = (byte)v;
                b[f.Offset + 1] = (byte)(v >> 8);
                b[f.Offset + 2] = (byte)(v >> 16);
                break;
            default:
                if (f.BigEndian) BinaryPrimitives.WriteUInt32BigEndian(b.AsSpan(f.Offset), (uint)v);
                else BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(f.Offset), (uint)v);
                break;
        }
    }

    /// <summary>Width and height fields of each format's headers.</summary>
    static List<Field> Dims(string seed, byte[] b)
    {
        var r = new List<Field>();
        if (seed.StartsWith("png", StringComparison.Ordinal)) { r.Add(new(16, 4, true)); r.Add(new(20, 4, true)); }
        else if (seed == "jpeg")
        {
            foreach (int at in JpegSegments(b).Where(s => b[s + 1] is >= 0xC0 and <= 0xCF and not 0xC4 and not 0xC8 and not 0xCC))
            {
                r.Add(new(at + 5, 2, true));
                r.Add(new(at + 7, 2, true));
            }
        }
        else if (seed == "bmp") { r.Add(new(18, 4, false)); r.Add(new(22, 4, false)); }
        else if (seed == "gif") { r.Add(new(6, 2, false)); r.Add(new(8, 2, false)); r.Add(new(30, 2, false)); r.Add(new(32, 2, false)); r.Add(new(26, 2, false)); }
        else
            foreach (var (type, data, _) in RiffChunks(b))
            {
                if (type == "VP8X" && data + 10 <= b.Length) { r.Add(new(data + 4, 3, false)); r.Add(new(data + 7, 3, false)); }
                if (type == "VP8 " && data + 10 <= b.Length) { r.Add(new(data + 6, 2, false)); r.Add(new(data + 8, 2, false)); }
                if (type == "VP8L" && data + 5 <= b.Length) r.Add(new(data + 1, 4, false));
            }
        return r;
    }

    /// <summary>Length, offset and count fields of each format's headers.</summary>
    static List<Field> Lengths(string seed, byte[] b)
    {
        var r = new List<Field>();
        if (seed.StartsWith("png", StringComparison.Ordinal)) r.AddRange(PngChunks(b).Select(c => new Field(c.Offset, 4, true)));
        else if (seed == "jpeg") r.AddRange(JpegSegments(b).Select(s => new Field(s + 2, 2, true)));
        else if (seed == "bmp") r.AddRange(new Field[] { new(2, 4, false), new(10, 4, false), new(14, 4, false), new(34, 4, false), new(46, 4, false), new(28, 2, false), new(30, 4, false) });
        else if (seed == "gif") r.AddRange(new Field[] { new(10, 1, false), new(34, 1, false), new(35, 1, false), new(36, 1, false) });
        else
        {
            r.Add(new(4, 4, false));
            r.AddRange(RiffChunks(b).Select(c => new Field(c.Data - 4, 4, false)));
        }
        return r;
    }

    static List<(int Offset, int Length)> PngChunks(byte[] b)
    {
        var r = new List<(int, int)>();
        for (int at = 8; at + 12 <= b.Length;)
        {
            int len = BinaryPrimitives.ReadInt32BigEndian(b.AsSpan(at));
            if (len < 0 || at + 12L + len > b.Length) break;
            r.Add((at, len));
            at += 12 + len;
        }
        return r;
    }

    static void FixPngCrcs(byte[] b)
    {
        foreach (var (at, len) in PngChunks(b))
            BinaryPrimitives.WriteUInt32BigEndian(b.AsSpan(at + 8 + len), Crc32.Compute(b.AsSpan(at + 4, 4 + len)));
    }

    /// <summary>Offsets of the JPEG marker segments that carry a length (up to the start of scan).</summary>
    static List<int> JpegSegments(byte[] b)
    {
        var r = new List<int>();
        for (int at = 2; at + 4 <= b.Length && b[at] == 0xFF;)
        {
            byte m = b[at + 1];
            r.Add(at);
            if (m == 0xDA) break;
            at += 2 + BinaryPrimitives.ReadUInt16BigEndian(b.AsSpan(at + 2));
        }
        return r;
    }

    static List<(string Type, int Data, int Length)> RiffChunks(byte[] b)
    {
        var r = new List<(string, int, int)>();
        for (int at = 12; at + 8 <= b.Length;)
        {
            string type = System.Text.Encoding.ASCII.GetString(b, at, 4);
            int len = (int)BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan(at + 4));
            if (len < 0 || at + 8L + len > b.Length) break;
            r.Add((type, at + 8, len));
            at += 8 + len + (len & 1);
        }
        return r;
    }
}
