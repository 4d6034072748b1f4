using System.Buffers.Binary;
using System.IO.Compression;
using System.Runtime.InteropServices;
using System.Text;
using AttnDistill.Checkpoints;

namespace AttnDistill.Tests.Reliability;

/// <summary>Files made to lie: PNG headers, safetensors offsets, compressed archives, FIFOs, odd folder names.</summary>
public static class HostileFiles
{
    /// <summary>A PNG of the given header size, bit depth and colour type whose IDAT holds <paramref name="rows"/> (filter byte included) zlib-compressed.</summary>
    public static byte[] Png(int width, int height, byte bitDepth, byte colorType, byte[] rows)
    {
        using var ms = new MemoryStream();
        ms.Write(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A });
        var ihdr = new byte[13];
        BinaryPrimitives.WriteInt32BigEndian(ihdr, width);
        BinaryPrimitives.WriteInt32BigEndian(ihdr.AsSpan(4), height);
        ihdr[8] = bitDepth;
        ihdr[9] = colorType;
        Chunk(ms, "IHDR", ihdr);
        using var z = new MemoryStream();
        using (var zs = new ZLibStream(z, CompressionLevel.Optimal, leaveOpen: true)) zs.Write(rows);
        Chunk(ms, "IDAT", z.ToArray());
        Chunk(ms, "IEND", Array.Empty<byte>());
        return ms.ToArray();
    }

    static void Chunk(Stream s, string type, byte[] data)
    {
        Span<byte> len = stackalloc byte[4];
        BinaryPrimitives.WriteInt32BigEndian(len, data.Length);
        s.Write(len);
        var typed = Encoding.ASCII.GetBytes(type).Concat(data).ToArray();
        s.Write(typed);
        BinaryPrimitives.WriteUInt32BigEndian(len, Crc32.Compute(typed));
        s.Write(len);
    }

    /// <summary>A few hundred bytes whose header claims 23170 x 23170 RGB pixels (the decompression bomb).</summary>
    public static byte[] LyingPng() => Png(23170, 23170, 8, 2, new byte[1 + 23170 * 3]);

    /// <summary>16-bit grayscale, one row: values as given (big-endian samples).</summary>
    public static byte[] Gray16Png(ushort[] values)
    {
        var row = new byte[1 + 2 * values.Length];
        for (int i = 0; i < values.Length; i++) BinaryPrimitives.WriteUInt16BigEndian(row.AsSpan(1 + 2 * i), values[i]);
        return Png(values.Length, 1, 16, 0, row);
    }

    /// <summary>A safetensors file from a raw header JSON and data bytes.</summary>
    public static void Safetensors(string path, string headerJson, byte[] data)
    {
        var header = Encoding.UTF8.GetBytes(headerJson);
        using var f = File.Create(path);
        Span<byte> len = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(len, (ulong)header.Length);
        f.Write(len);
        f.Write(header);
        f.Write(data);
    }

    /// <summary>The archive re-packed with every entry deflated (torch.save never compresses).</summary>
    public static void Deflated(string source, string target)
    {
        using var input = ZipFile.OpenRead(source);
        using var output = ZipFile.Open(target, ZipArchiveMode.Create);
        foreach (var e in input.Entries)
        {
            var n = output.CreateEntry(e.FullName, CompressionLevel.SmallestSize);
            using var from = e.Open();
            using var to = n.Open();
            from.CopyTo(to);
        }
        // One more storage of zeros: 64 MB that deflate to a few kB (what a zip bomb is made of).
        string prefix = input.Entries.First(e => e.FullName.EndsWith("data.pkl", StringComparison.Ordinal)).FullName[..^"data.pkl".Length];
        using var z = output.CreateEntry(prefix + "data/999", CompressionLevel.SmallestSize).Open();
        z.Write(new byte[64 << 20]);
    }

    [DllImport("libc", SetLastError = true)]
    static extern int mkfifo(string path, uint mode);

    [DllImport("libc", EntryPoint = "mkdir", SetLastError = true)]
    static extern int MkdirBytes(byte[] path, uint mode);

    public static string Fifo(string path)
    {
        if (mkfifo(path, 0x1b6) != 0) throw new IOException($"mkfifo {path} failed: {Marshal.GetLastPInvokeError()}");
        return path;
    }

    /// <summary>A folder whose name is the given bytes (not valid UTF-8), made with mkdir(2) since .NET names are strings.</summary>
    public static void MkdirRaw(string parent, byte[] name)
    {
        var path = Encoding.UTF8.GetBytes(parent + "/").Concat(name).Append((byte)0).ToArray();
        if (MkdirBytes(path, 0x1ff) != 0) throw new IOException($"mkdir failed: {Marshal.GetLastPInvokeError()}");
    }

    /// <summary>A train/test ImageFolder of small PNGs: classes a, b (train), with what <paramref name="extra"/> adds.</summary>
    public static string Folder(Action<string>? extra = null)
    {
        string root = Directory.CreateTempSubdirectory("hostile-data").FullName;
        var png = Png(28, 28, 8, 2, Enumerable.Range(0, 28).SelectMany(r => new byte[] { 0 }.Concat(Enumerable.Range(0, 84).Select(i => (byte)(i * 3 + r)))).ToArray());
        foreach (string split in new[] { "train", "test" })
            foreach (string c in new[] { "a", "b" })
            {
                Directory.CreateDirectory(Path.Combine(root, split, c));
                for (int i = 0; i < 4; i++) File.WriteAllBytes(Path.Combine(root, split, c, $"{i}.png"), png);
            }
        extra?.Invoke(root);
        return root;
    }
}
