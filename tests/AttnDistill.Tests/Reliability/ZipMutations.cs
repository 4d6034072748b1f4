using System.Buffers.Binary;
using System.IO.Compression;
using AttnDistill.Checkpoints;

namespace AttnDistill.Tests.Reliability;

/// <summary>
/// Structural mutations of a torch.save zip, written by hand (System.IO.Compression cannot write a
/// header that lies): entries deflated, a zip bomb (a storage of zeros far larger than the file),
/// local and central sizes, CRCs, methods and offsets that disagree with the data. Each case is a
/// plausible archive, so the reader's size and budget checks are what is exercised, not its
/// "not a zip" path.
/// </summary>
public static class ZipMutations
{
    public static readonly string[] Kinds =
    {
        "zip-deflated", "zip-bomb", "zip-bomb-small-claim", "zip-central-size-lie", "zip-local-size-lie", "zip-crc-lie",
        "zip-method", "zip-offset-lie", "zip-duplicate-entry", "zip64-marker",
    };

    /// <summary>One entry as it will be written: compressed bytes and every header field (lies included).</summary>
    sealed class Entry
    {
        public required string Name;
        public ushort Method;
        public required byte[] Stored;
        public uint Crc;
        public long Length;
        public long? LocalStored, LocalLength, CentralStored, CentralLength;
        public uint? LocalCrc;
        public long? OffsetShift;
    }

    /// <summary>64 MiB of zeros deflated (about 64 KiB), made once: a bomb per case would cost a second of CPU each.</summary>
    static readonly Lazy<(byte[] Deflated, uint Crc, long Length)> Bomb = new(() =>
    {
        const int mb = 1 << 20, count = 64;
        var zeros = new byte[mb];
        var ms = new MemoryStream();
        uint crc = 0;
        using (var d = new DeflateStream(ms, CompressionLevel.SmallestSize, leaveOpen: true))
            for (int i = 0; i < count; i++) { d.Write(zeros); crc = Crc32.Compute(zeros, crc); }
        return (ms.ToArray(), crc, (long)mb * count);
    });

    public static (string Kind, byte[] Bytes) Mutate(byte[] zipBytes, Random rng)
    {
        var entries = Read(zipBytes);
        string kind = Kinds[rng.Next(Kinds.Length)];
        var storages = entries.Where(e => e.Name.Contains("/data/", StringComparison.Ordinal)).ToList();
        var pickle = entries.First(e => e.Name.EndsWith("data.pkl", StringComparison.Ordinal));
        Entry Any() => entries[rng.Next(entries.Count)];
        Entry Storage() => storages.Count > 0 ? storages[rng.Next(storages.Count)] : pickle;
        long Lie(long honest) => rng.Next(6) switch
        {
            0 => 0,
            1 => honest + 1 + rng.Next(4096),
            2 => Math.Max(0, honest - 1 - rng.Next(64)),
            3 => 0xFFFFFFFEL,
            4 => honest * 1000 + 7,
            _ => rng.Next(1 << 20),
        };
        switch (kind)
        {
            case "zip-deflated":
                foreach (var e in entries.Where(_ => rng.Next(4) != 0)) Deflate(e);
                break;
            case "zip-bomb":
            {
                // A storage (or the pickle) replaced by 64 MiB of zeros that deflate to 64 KiB, honest headers.
                var (deflated, crc, length) = Bomb.Value;
                var target = rng.Next(3) == 0 ? pickle : Storage();
                target.Method = 8;
                target.Stored = deflated;
                target.Crc = crc;
                target.Length = length;
                break;
            }
            case "zip-bomb-small-claim":
            {
                // The same bomb, but the headers claim the entry's original small size: the inflater must stop at the claim.
                var (deflated, crc, _) = Bomb.Value;
                var target = Storage();
                target.Method = 8;
                target.Stored = deflated;
                if (rng.Next(2) == 0) target.Crc = crc;
                break;
            }
            case "zip-central-size-lie":
            {
                var e = Any();
                if (rng.Next(2) == 0) e.CentralStored = Lie(e.Stored.Length); else e.CentralLength = Lie(e.Length);
                break;
            }
            case "zip-local-size-lie":
            {
                var e = Any();
                if (rng.Next(3) == 0) Deflate(e);
                if (rng.Next(2) == 0) e.LocalStored = Lie(e.Stored.Length); else e.LocalLength = Lie(e.Length);
                break;
            }
            case "zip-crc-lie":
            {
                var e = Any();
                if (rng.Next(2) == 0) e.Crc ^= 1u << rng.Next(32); else e.LocalCrc = e.Crc ^ 0x80000000u;
                break;
            }
            case "zip-method":
                // bzip2, LZMA, an unassigned number, deflate64, shrink: methods torch.save never writes.
                Any().Method = new ushort[] { 12, 14, 99, 9, 1 }[rng.Next(5)];
                break;
            case "zip-offset-lie":
                Any().OffsetShift = rng.Next(2) == 0 ? rng.Next(-64, 64) : 1L << 31;
                break;
            case "zip-duplicate-entry":
            {
                var copy = rng.Next(2) == 0 ? pickle : Any();
                var twin = new Entry { Name = copy.Name, Method = copy.Method, Stored = (byte[])copy.Stored.Clone(), Crc = copy.Crc, Length = copy.Length };
                // The twin first or last, sometimes with other bytes: a reader keeping the first or the last name sees different data.
                if (twin.Stored.Length > 0 && rng.Next(2) == 0) { twin.Stored[rng.Next(twin.Stored.Length)] ^= 0x5a; twin.Crc = Crc32.Compute(twin.Stored); }
                entries.Insert(rng.Next(2) == 0 ? 0 : entries.Count, twin);
                break;
            }
            default:
            {
                // 0xFFFFFFFF in a 32-bit size field means "see the zip64 extra field", which is absent.
                var e = Any();
                if (rng.Next(2) == 0) e.CentralLength = 0xFFFFFFFFL; else e.CentralStored = 0xFFFFFFFFL;
                break;
            }
        }
        return (kind, Write(entries));
    }

    static void Deflate(Entry e)
    {
        if (e.Method != 0) return;
        var ms = new MemoryStream();
        using (var d = new DeflateStream(ms, CompressionLevel.Optimal, leaveOpen: true)) d.Write(e.Stored);
        e.Stored = ms.ToArray();
        e.Method = 8;
    }

    static List<Entry> Read(byte[] zipBytes)
    {
        var list = new List<Entry>();
        using var zin = new ZipArchive(new MemoryStream(zipBytes), ZipArchiveMode.Read);
        foreach (var e in zin.Entries)
        {
            using var s = e.Open();
            var ms = new MemoryStream();
            s.CopyTo(ms);
            var data = ms.ToArray();
            list.Add(new Entry { Name = e.FullName, Method = 0, Stored = data, Crc = Crc32.Compute(data), Length = data.Length });
        }
        return list;
    }

    static byte[] Write(List<Entry> entries)
    {
        var ms = new MemoryStream();
        var offsets = new List<long>();
        foreach (var e in entries)
        {
            offsets.Add(ms.Position);
            var name = System.Text.Encoding.UTF8.GetBytes(e.Name);
            var h = new byte[30];
            BinaryPrimitives.WriteUInt32LittleEndian(h, 0x04034b50);
            BinaryPrimitives.WriteUInt16LittleEndian(h.AsSpan(4), 20);
            BinaryPrimitives.WriteUInt16LittleEndian(h.AsSpan(8), e.Method);
            BinaryPrimitives.WriteUInt32LittleEndian(h.AsSpan(14), e.LocalCrc ?? e.Crc);
            BinaryPrimitives.WriteUInt32LittleEndian(h.AsSpan(18), (uint)(e.LocalStored ?? e.Stored.Length));
            BinaryPrimitives.WriteUInt32LittleEndian(h.AsSpan(22), (uint)(e.LocalLength ?? e.Length));
            BinaryPrimitives.WriteUInt16LittleEndian(h.AsSpan(26), (ushort)name.Length);
            ms.Write(h);
            ms.Write(name);
            ms.Write(e.Stored);
        }
        long cdStart = ms.Position;
        for (int i = 0; i < entries.Count; i++)
        {
            var e = entries[i];
            var name = System.Text.Encoding.UTF8.GetBytes(e.Name);
            var h = new byte[46];
            BinaryPrimitives.WriteUInt32LittleEndian(h, 0x02014b50);
            BinaryPrimitives.WriteUInt16LittleEndian(h.AsSpan(4), 20);
            BinaryPrimitives.WriteUInt16LittleEndian(h.AsSpan(6), 20);
            BinaryPrimitives.WriteUInt16LittleEndian(h.AsSpan(10), e.Method);
            BinaryPrimitives.WriteUInt32LittleEndian(h.AsSpan(16), e.Crc);
            BinaryPrimitives.WriteUInt32LittleEndian(h.AsSpan(20), (uint)(e.CentralStored ?? e.Stored.Length));
            BinaryPrimitives.WriteUInt32LittleEndian(h.AsSpan(24), (uint)(e.CentralLength ?? e.Length));
            BinaryPrimitives.WriteUInt16LittleEndian(h.AsSpan(28), (ushort)name.Length);
            BinaryPrimitives.WriteUInt32LittleEndian(h.AsSpan(42), (uint)(offsets[i] + (e.OffsetShift ?? 0)));
            ms.Write(h);
            ms.Write(name);
        }
        long cdEnd = ms.Position;
        var end = new byte[22];
        BinaryPrimitives.WriteUInt32LittleEndian(end, 0x06054b50);
        BinaryPrimitives.WriteUInt16LittleEndian(end.AsSpan(8), (ushort)entries.Count);
        BinaryPrimitives.WriteUInt16LittleEndian(end.AsSpan(10), (ushort)entries.Count);
        BinaryPrimitives.WriteUInt32LittleEndian(end.AsSpan(12), (uint)(cdEnd - cdStart));
        BinaryPrimitives.WriteUInt32LittleEndian(end.AsSpan(16), (uint)cdStart);
        ms.Write(end);
        return ms.ToArray();
    }
}
