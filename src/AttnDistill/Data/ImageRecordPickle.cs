using System.Buffers.Binary;
using System.Text;

namespace AttnDistill.Data;

/// <summary>
/// The records of the authors' LMDB packs (<c>util/folder2lmdb.py</c>): each value is
/// <c>pickle.dumps((encoded_image_bytes, label))</c>, and <c>__len__</c> / <c>__keys__</c> are a
/// pickled int and a pickled list of the ASCII keys. Only this fixed shape is read, straight from
/// the mapped bytes, so the image is decoded without copying it and a label is found without
/// touching the image's pages. Written as pickle protocol 3, which every Python 3 reads.
/// </summary>
public static class ImageRecordPickle
{
    const byte Proto = 0x80, Frame = 0x95, ShortBinBytes = (byte)'C', BinBytes = (byte)'B', BinBytes8 = 0x8e;
    const byte Memoize = 0x94, BinPut = (byte)'q', LongBinPut = (byte)'r';
    const byte BinInt = (byte)'J', BinInt1 = (byte)'K', BinInt2 = (byte)'M', Long1 = 0x8a;
    const byte Tuple2 = 0x86, Stop = (byte)'.', EmptyList = (byte)']', Mark = (byte)'(', Appends = (byte)'e';
    const byte BinUnicode = (byte)'X';

    /// <summary>Where a record's image bytes are, and its label.</summary>
    public readonly record struct Record(int ImageOffset, int ImageLength, int Label);

    /// <summary>pickle.dumps((image, label), protocol=3).</summary>
    public static byte[] Encode(ReadOnlySpan<byte> image, int label)
    {
        using var ms = Start(image.Length + 32);
        WriteBytes(ms, image);
        WriteInt(ms, label);
        ms.WriteByte(Tuple2);
        return Finish(ms);
    }

    /// <summary>pickle.dumps(n, protocol=3).</summary>
    public static byte[] EncodeInt(int n)
    {
        using var ms = Start(16);
        WriteInt(ms, n);
        return Finish(ms);
    }

    /// <summary>pickle.dumps(b"...", protocol=3): __labels__, every label as little-endian int32.</summary>
    public static byte[] EncodeBytes(ReadOnlySpan<byte> bytes)
    {
        using var ms = Start(bytes.Length + 16);
        WriteBytes(ms, bytes);
        return Finish(ms);
    }

    /// <summary>pickle.dumps([b"0", b"1", ...], protocol=3): the __keys__ list.</summary>
    public static byte[] EncodeByteStrings(IEnumerable<byte[]> items) => EncodeList(items, (ms, b) => WriteBytes(ms, b));

    /// <summary>pickle.dumps(["name", ...], protocol=3).</summary>
    public static byte[] EncodeStrings(IEnumerable<string> items) => EncodeList(items, (ms, s) =>
    {
        var utf8 = Encoding.UTF8.GetBytes(s);
        ms.WriteByte(BinUnicode);
        WriteUInt32(ms, (uint)utf8.Length);
        ms.Write(utf8);
    });

    /// <summary>
    /// Finds the image bytes and the label of a <c>(bytes, int)</c> record pickled with protocol 3 to 5
    /// (what Python 3 writes by default). Throws <see cref="InvalidDataException"/> for anything else.
    /// </summary>
    public static Record Parse(ReadOnlySpan<byte> value, string name)
    {
        int at = 0;
        if (value.Length < 4 || value[0] != Proto || value[1] < 3)
            throw Bad(name, "not a pickle of protocol 3 or later");
        at = 2;
        if (value[at] == Frame) at += 9;                   // protocol 4+: a frame length only
        long length;
        byte op = At(value, at++, name);
        switch (op)
        {
            case ShortBinBytes: length = At(value, at, name); at += 1; break;
            case BinBytes: length = BinaryPrimitives.ReadUInt32LittleEndian(Slice(value, at, 4, name)); at += 4; break;
            case BinBytes8: length = (long)BinaryPrimitives.ReadUInt64LittleEndian(Slice(value, at, 8, name)); at += 8; break;
            default: throw Bad(name, $"expected the image bytes first, found opcode 0x{op:x2}");
        }
        if (length > value.Length - at) throw Bad(name, $"image of {length} bytes in a record of {value.Length}");
        int imageOffset = at, imageLength = (int)length;
        at += imageLength;
        at = SkipMemo(value, at, name);
        int label;
        op = At(value, at++, name);
        switch (op)
        {
            case BinInt1: label = At(value, at, name); at += 1; break;
            case BinInt2: label = BinaryPrimitives.ReadUInt16LittleEndian(Slice(value, at, 2, name)); at += 2; break;
            case BinInt: label = BinaryPrimitives.ReadInt32LittleEndian(Slice(value, at, 4, name)); at += 4; break;
            case Long1:
            {
                int n = At(value, at, name);
                if (n is < 1 or > 4) throw Bad(name, $"label of {n} bytes");
                var bytes = Slice(value, at + 1, n, name);
                long v = 0;
                for (int i = n - 1; i >= 0; i--) v = (v << 8) | bytes[i];
                if ((bytes[n - 1] & 0x80) != 0) v -= 1L << (8 * n);
                label = checked((int)v);
                at += 1 + n;
                break;
            }
            default: throw Bad(name, $"expected an int label after the image, found opcode 0x{op:x2}");
        }
        if (At(value, at, name) != Tuple2) throw Bad(name, "expected a 2-tuple (image, label)");
        if (label < 0) throw Bad(name, $"negative label {label}");
        return new Record(imageOffset, imageLength, label);
    }

    static int SkipMemo(ReadOnlySpan<byte> value, int at, string name) => At(value, at, name) switch
    {
        Memoize => at + 1,
        BinPut => at + 2,
        LongBinPut => at + 5,
        _ => at,
    };

    /// <summary>A pickle stream opened with the protocol-3 header.</summary>
    static MemoryStream Start(int capacity)
    {
        var ms = new MemoryStream(capacity);
        ms.WriteByte(Proto);
        ms.WriteByte(3);
        return ms;
    }

    static byte[] Finish(MemoryStream ms)
    {
        ms.WriteByte(Stop);
        return ms.ToArray();
    }

    static byte[] EncodeList<T>(IEnumerable<T> items, Action<MemoryStream, T> write)
    {
        using var ms = Start(256);
        ms.WriteByte(EmptyList);
        // APPENDS in batches of 1000, as Python's pickler does.
        int inBatch = 0;
        foreach (var item in items)
        {
            if (inBatch == 0) ms.WriteByte(Mark);
            write(ms, item);
            if (++inBatch == 1000) { ms.WriteByte(Appends); inBatch = 0; }
        }
        if (inBatch > 0) ms.WriteByte(Appends);
        return Finish(ms);
    }

    static void WriteBytes(MemoryStream ms, ReadOnlySpan<byte> b)
    {
        if (b.Length < 256) { ms.WriteByte(ShortBinBytes); ms.WriteByte((byte)b.Length); }
        else { ms.WriteByte(BinBytes); WriteUInt32(ms, (uint)b.Length); }
        ms.Write(b);
    }

    static void WriteInt(MemoryStream ms, int n)
    {
        if (n is >= 0 and < 256) { ms.WriteByte(BinInt1); ms.WriteByte((byte)n); return; }
        if (n is >= 0 and < 65536) { ms.WriteByte(BinInt2); Span<byte> two = stackalloc byte[2]; BinaryPrimitives.WriteUInt16LittleEndian(two, (ushort)n); ms.Write(two); return; }
        ms.WriteByte(BinInt);
        Span<byte> four = stackalloc byte[4];
        BinaryPrimitives.WriteInt32LittleEndian(four, n);
        ms.Write(four);
    }

    static void WriteUInt32(MemoryStream ms, uint n)
    {
        Span<byte> four = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(four, n);
        ms.Write(four);
    }

    static byte At(ReadOnlySpan<byte> value, int at, string name) =>
        at < value.Length ? value[at] : throw Bad(name, "record ends early");

    static ReadOnlySpan<byte> Slice(ReadOnlySpan<byte> value, int at, int count, string name) =>
        at + count <= value.Length ? value.Slice(at, count) : throw Bad(name, "record ends early");

    static InvalidDataException Bad(string name, string what) =>
        new($"{name}: not an (image bytes, label) record as folder2lmdb.py writes ({what})");
}
