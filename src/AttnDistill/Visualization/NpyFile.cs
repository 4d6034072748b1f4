using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using AttnDistill.Checkpoints;
using static TorchSharp.torch;

namespace AttnDistill.Visualization;

/// <summary>
/// NumPy's .npy format, version 1.0, for float32 arrays in C order: the magic "\x93NUMPY", version
/// bytes 1 0, a little-endian uint16 header length, a Python dict literal header padded with spaces
/// to a multiple of 64 bytes (what numpy itself writes) and ended by '\n', then the raw data.
/// <c>numpy.load</c> reads these files as they are.
/// </summary>
public static partial class NpyFile
{
    static readonly byte[] Magic = { 0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y' };

    /// <summary>Writes a float tensor (any device, any float dtype) as '&lt;f4' atomically.</summary>
    public static void Write(string path, Tensor array)
    {
        using var cpu = array.detach().to(ScalarType.Float32).cpu().contiguous();
        Write(path, cpu.data<float>().ToArray(), cpu.shape);
    }

    /// <summary>Writes float32 values of the given shape (C order) atomically.</summary>
    public static void Write(string path, float[] values, IReadOnlyList<long> shape)
    {
        long count = shape.Aggregate(1L, (a, b) => a * b);
        if (count != values.LongLength)
            throw new ArgumentException($"shape ({string.Join(", ", shape)}) holds {count} values, got {values.LongLength}.");
        byte[] header = Header(shape);
        AtomicFile.Write(path, stream =>
        {
            stream.Write(header);
            var bytes = new byte[values.LongLength * sizeof(float)];
            Buffer.BlockCopy(values, 0, bytes, 0, bytes.Length);
            if (!BitConverter.IsLittleEndian)
                for (int i = 0; i < bytes.Length; i += 4) Array.Reverse(bytes, i, 4);
            stream.Write(bytes);
        });
    }

    /// <summary>Reads a '&lt;f4' C-order .npy file of version 1.0 (what <see cref="Write(string, float[], IReadOnlyList{long})"/> writes, or numpy.save of a float32 array).</summary>
    public static (float[] Values, long[] Shape) Read(string path)
    {
        byte[] all = File.ReadAllBytes(path);
        if (all.Length < 10 || !all.AsSpan(0, 6).SequenceEqual(Magic))
            throw new InvalidDataException($"{path}: not a .npy file (bad magic).");
        if (all[6] != 1 || all[7] != 0) throw new InvalidDataException($"{path}: .npy version {all[6]}.{all[7]}, only 1.0 is read.");
        int headerLength = all[8] | (all[9] << 8);
        if (10 + headerLength > all.Length) throw new InvalidDataException($"{path}: truncated header.");
        string header = Encoding.ASCII.GetString(all, 10, headerLength);
        if (!header.Contains("'descr': '<f4'") || !header.Contains("'fortran_order': False"))
            throw new InvalidDataException($"{path}: only little-endian float32 in C order is read; header is {header.Trim()}.");
        var m = ShapePattern().Match(header);
        if (!m.Success) throw new InvalidDataException($"{path}: no shape in header {header.Trim()}.");
        long[] shape = m.Groups[1].Value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(s => long.Parse(s, CultureInfo.InvariantCulture)).ToArray();
        long count = shape.Aggregate(1L, (a, b) => a * b);
        int offset = 10 + headerLength;
        if (all.Length - offset != count * sizeof(float))
            throw new InvalidDataException($"{path}: {all.Length - offset} data bytes for shape ({string.Join(", ", shape)}).");
        var values = new float[count];
        Buffer.BlockCopy(all, offset, values, 0, (int)(count * sizeof(float)));
        return (values, shape);
    }

    static byte[] Header(IReadOnlyList<long> shape)
    {
        // Python's tuple repr: "()" for a scalar, "(n,)" for one axis, "(a, b)" otherwise.
        string dims = shape.Count == 1 ? $"{shape[0]}," : string.Join(", ", shape.Select(d => d.ToString(CultureInfo.InvariantCulture)));
        string dict = $"{{'descr': '<f4', 'fortran_order': False, 'shape': ({dims}), }}";
        int unpadded = Magic.Length + 2 + 2 + dict.Length + 1;          // + '\n'
        int padding = (64 - unpadded % 64) % 64;
        string text = dict + new string(' ', padding) + "\n";
        if (text.Length > ushort.MaxValue) throw new ArgumentException("shape too long for a version 1.0 .npy header.");
        var header = new byte[10 + text.Length];
        Magic.CopyTo(header, 0);
        header[6] = 1;
        header[7] = 0;
        header[8] = (byte)(text.Length & 0xff);
        header[9] = (byte)(text.Length >> 8);
        Encoding.ASCII.GetBytes(text, 0, text.Length, header, 10);
        return header;
    }

    [GeneratedRegex(@"'shape':\s*\(([^)]*)\)")]
    private static partial Regex ShapePattern();
}
