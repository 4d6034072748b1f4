using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using TorchSharp;
using static TorchSharp.torch;

namespace AttnDistill.Checkpoints;

/// <summary>What a safetensors file holds: tensors in file order and the string metadata.</summary>
public sealed record SafetensorsContents(
    Dictionary<string, Tensor> Tensors,
    IReadOnlyDictionary<string, string> Metadata,
    string? DataSha256);

/// <summary>
/// The safetensors format (huggingface/safetensors), read and written here rather than through
/// PyBridge so every size is validated before a byte is trusted: an 8-byte little-endian header
/// length, a JSON header {name: {dtype, shape, data_offsets}, "__metadata__": {str: str}}, then the
/// raw little-endian data. Truncated or inconsistent files fail with a message that says so.
/// </summary>
public static class SafetensorsFile
{
    const string MetadataKey = "__metadata__";
    const long MaxHeaderBytes = 100L << 20;

    /// <summary>Writes atomically (see <see cref="AtomicFile"/>).</summary>
    public static void Write(string path, IEnumerable<KeyValuePair<string, Tensor>> tensors, IReadOnlyDictionary<string, string>? metadata = null)
        => AtomicFile.Write(path, s => Write(s, tensors, metadata));

    public static void Write(Stream stream, IEnumerable<KeyValuePair<string, Tensor>> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var items = tensors.ToList();
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (name, _) in items)
        {
            if (name == MetadataKey) throw new ArgumentException($"'{MetadataKey}' cannot name a tensor.");
            if (!names.Add(name)) throw new ArgumentException($"tensor name '{name}' appears twice.");
        }

        using var header = new MemoryStream();
        using (var w = new Utf8JsonWriter(header))
        {
            w.WriteStartObject();
            if (metadata is { Count: > 0 })
            {
                w.WritePropertyName(MetadataKey);
                w.WriteStartObject();
                foreach (var (k, v) in metadata) w.WriteString(k, v);
                w.WriteEndObject();
            }
            long offset = 0;
            foreach (var (name, t) in items)
            {
                long length = t.NumberOfElements * t.ElementSize;
                w.WritePropertyName(name);
                w.WriteStartObject();
                w.WriteString("dtype", DtypeName(t.dtype));
                w.WritePropertyName("shape");
                w.WriteStartArray();
                foreach (long d in t.shape) w.WriteNumberValue(d);
                w.WriteEndArray();
                w.WritePropertyName("data_offsets");
                w.WriteStartArray();
                w.WriteNumberValue(offset);
                w.WriteNumberValue(offset + length);
                w.WriteEndArray();
                w.WriteEndObject();
                offset += length;
            }
            w.WriteEndObject();
        }
        // The format allows trailing spaces; padding to 8 bytes keeps the data aligned.
        while (header.Length % 8 != 0) header.WriteByte((byte)' ');

        Span<byte> len = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(len, (ulong)header.Length);
        stream.Write(len);
        header.Position = 0;
        header.CopyTo(stream);
        foreach (var (_, t) in items) WriteTensorBytes(stream, t);
        stream.Flush();
    }

    /// <summary>The raw bytes of a tensor, in the layout safetensors and torch.save expect (CPU, contiguous).</summary>
    internal static void WriteTensorBytes(Stream stream, Tensor t)
    {
        using var scope = NewDisposeScope();
        var c = t.detach().cpu().contiguous();
        if (c.NumberOfElements == 0) return;
        stream.Write(c.bytes);
    }

    /// <summary>Reads every tensor. With <paramref name="hashData"/> the SHA-256 of the data section is returned too.</summary>
    public static SafetensorsContents Read(string path, bool hashData = false)
    {
        using var fs = OpenRead(path);
        var (entries, metadata, dataStart) = ReadHeader(fs, path);
        var result = new Dictionary<string, Tensor>(entries.Count, StringComparer.Ordinal);
        IncrementalHash? hash = hashData ? IncrementalHash.CreateHash(HashAlgorithmName.SHA256) : null;
        try
        {
            // Read in offset order so the hash covers the data section front to back.
            foreach (var e in entries.OrderBy(e => e.Begin))
            {
                var t = empty(e.Shape, e.Dtype);
                try
                {
                    if (e.Length > 0)
                    {
                        fs.Position = dataStart + e.Begin;
                        var dst = t.bytes;
                        fs.ReadExactly(dst);
                        hash?.AppendData(dst);
                    }
                }
                catch
                {
                    t.Dispose();
                    throw;
                }
                result[e.Name] = t;
            }
        }
        catch (EndOfStreamException ex)
        {
            foreach (var t in result.Values) t.Dispose();
            throw new CheckpointFormatException($"{path}: the file ended early while reading tensor data (truncated?).", ex);
        }
        // Keep the file's own order for the caller.
        var ordered = new Dictionary<string, Tensor>(entries.Count, StringComparer.Ordinal);
        foreach (var e in entries) ordered[e.Name] = result[e.Name];
        string? digest = hash is null ? null : Convert.ToHexStringLower(hash.GetHashAndReset());
        hash?.Dispose();
        return new SafetensorsContents(ordered, metadata, digest);
    }

    /// <summary>Names, shapes and metadata without reading tensor data.</summary>
    public static (IReadOnlyList<(string Name, ScalarType Dtype, long[] Shape)> Tensors, IReadOnlyDictionary<string, string> Metadata) ReadHeader(string path)
    {
        using var fs = OpenRead(path);
        var (entries, metadata, _) = ReadHeader(fs, path);
        return (entries.Select(e => (e.Name, e.Dtype, e.Shape)).ToList(), metadata);
    }

    /// <summary>True when the first bytes look like a safetensors header (a plausible length, then '{').</summary>
    public static bool LooksLikeSafetensors(ReadOnlySpan<byte> first9, long fileLength)
    {
        if (first9.Length < 9) return false;
        ulong n = BinaryPrimitives.ReadUInt64LittleEndian(first9);
        // A length past the end still counts: the reader then says "truncated" rather than "not safetensors".
        return n >= 2 && n <= (ulong)MaxHeaderBytes && first9[8] == (byte)'{';
    }

    sealed record Entry(string Name, ScalarType Dtype, long[] Shape, long Begin, long Length);

    static FileStream OpenRead(string path)
    {
        CheckpointFileCheck.Require(path);
        return new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
    }

    static (List<Entry> Entries, Dictionary<string, string> Metadata, long DataStart) ReadHeader(FileStream fs, string path)
    {
        long fileLength = fs.Length;
        if (fileLength < 8)
            throw new CheckpointFormatException($"{path}: {fileLength} bytes is too short for a safetensors file (truncated?).");
        Span<byte> len = stackalloc byte[8];
        fs.ReadExactly(len);
        ulong n = BinaryPrimitives.ReadUInt64LittleEndian(len);
        if (n > (ulong)MaxHeaderBytes)
            throw new CheckpointFormatException($"{path}: safetensors header length {n} is implausible (corrupt file, or not safetensors).");
        if ((long)n > fileLength - 8)
            throw new CheckpointFormatException($"{path}: the safetensors header claims {n} bytes but the file has only {fileLength - 8} after the length field (truncated?).");
        var headerBytes = new byte[n];
        fs.ReadExactly(headerBytes);
        long dataStart = 8 + (long)n;
        long dataLength = fileLength - dataStart;

        // JsonDocument accepts invalid UTF-8 inside strings and only fails when a name is read.
        if (!System.Text.Unicode.Utf8.IsValid(headerBytes))
            throw new CheckpointFormatException($"{path}: the safetensors header is not valid UTF-8 (corrupt file).");
        JsonDocument doc;
        try { doc = JsonDocument.Parse(headerBytes); }
        catch (JsonException ex)
        {
            throw new CheckpointFormatException($"{path}: the safetensors header is not valid JSON (corrupt file): {ex.Message}", ex);
        }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw new CheckpointFormatException($"{path}: the safetensors header is not a JSON object (corrupt file).");
            var entries = new List<Entry>();
            var names = new HashSet<string>(StringComparer.Ordinal);
            var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
            long maxEnd = 0;
            foreach (var prop in doc.RootElement.EnumerateObject())
            {
                if (prop.Name == MetadataKey)
                {
                    if (prop.Value.ValueKind != JsonValueKind.Object)
                        throw new CheckpointFormatException($"{path}: '{MetadataKey}' must map strings to strings.");
                    foreach (var m in prop.Value.EnumerateObject())
                        metadata[m.Name] = m.Value.ValueKind == JsonValueKind.String ? m.Value.GetString()! : m.Value.GetRawText();
                    continue;
                }
                if (!names.Add(prop.Name))
                    throw new CheckpointFormatException($"{path}: the safetensors header names tensor '{Printable(prop.Name)}' twice (corrupt or crafted file; the format forbids it).");
                var e = ParseEntry(prop, path);
                long end = e.Begin + e.Length;
                if (end > dataLength)
                    throw new CheckpointFormatException(
                        $"{path}: tensor '{Printable(e.Name)}' ends at byte {end} of the data section but the file holds only {dataLength} data bytes " +
                        $"(file is {fileLength} bytes, needs at least {dataStart + end}): truncated or corrupt.");
                maxEnd = Math.Max(maxEnd, end);
                entries.Add(e);
            }
            CheckNoOverlap(entries, path);
            return (entries, metadata, dataStart);
        }
    }

    /// <summary>
    /// Tensors may not share bytes: the format lays them end to end, and entries pointing at one
    /// offset would each become a full copy (800 x 4 MB from a 4 MB file).
    /// </summary>
    static void CheckNoOverlap(List<Entry> entries, string path)
    {
        Entry? previous = null;
        foreach (var e in entries.Where(e => e.Length > 0).OrderBy(e => e.Begin))
        {
            if (previous is not null && e.Begin < previous.Begin + previous.Length)
                throw new CheckpointFormatException(
                    $"{path}: tensors '{Printable(previous.Name)}' and '{Printable(e.Name)}' overlap in the data section (bytes {previous.Begin}-{previous.Begin + previous.Length} and {e.Begin}-{e.Begin + e.Length}): corrupt or crafted file.");
            previous = e;
        }
    }

    /// <summary>A name for an error message: control characters escaped, at most 80 characters.</summary>
    internal static string Printable(string name) => TerminalText.Safe(name, 80);

    static Entry ParseEntry(JsonProperty prop, string path)
    {
        string name = prop.Name;
        try
        {
            var v = prop.Value;
            var dtype = ParseDtype(v.GetProperty("dtype").GetString() ?? "");
            var shape = v.GetProperty("shape").EnumerateArray().Select(x => x.GetInt64()).ToArray();
            var offs = v.GetProperty("data_offsets").EnumerateArray().Select(x => x.GetInt64()).ToArray();
            if (shape.Any(d => d < 0) || offs.Length != 2 || offs[0] < 0 || offs[1] < offs[0])
                throw new FormatException("negative size or bad offsets");
            long numel = shape.Aggregate(1L, (a, b) => checked(a * b));
            long elem = ElementSize(dtype);
            if (offs[1] - offs[0] != numel * elem)
                throw new FormatException($"{offs[1] - offs[0]} bytes for shape [{string.Join(",", shape)}] of {elem}-byte elements");
            return new Entry(name, dtype, shape, offs[0], offs[1] - offs[0]);
        }
        catch (Exception ex) when (ex is FormatException or KeyNotFoundException or InvalidOperationException or OverflowException or NotSupportedException)
        {
            throw new CheckpointFormatException($"{path}: bad safetensors header entry for '{Printable(name)}' ({ex.Message}): corrupt file.", ex);
        }
    }

    static long ElementSize(ScalarType t) => t switch
    {
        ScalarType.Float64 or ScalarType.Int64 => 8,
        ScalarType.Float32 or ScalarType.Int32 => 4,
        ScalarType.Float16 or ScalarType.BFloat16 or ScalarType.Int16 => 2,
        _ => 1,
    };

    static ScalarType ParseDtype(string s) => s switch
    {
        "F64" => ScalarType.Float64,
        "F32" => ScalarType.Float32,
        "F16" => ScalarType.Float16,
        "BF16" => ScalarType.BFloat16,
        "I64" => ScalarType.Int64,
        "I32" => ScalarType.Int32,
        "I16" => ScalarType.Int16,
        "I8" => ScalarType.Int8,
        "U8" => ScalarType.Byte,
        "BOOL" => ScalarType.Bool,
        _ => throw new NotSupportedException($"dtype '{s}' is not supported"),
    };

    static string DtypeName(ScalarType t) => t switch
    {
        ScalarType.Float64 => "F64",
        ScalarType.Float32 => "F32",
        ScalarType.Float16 => "F16",
        ScalarType.BFloat16 => "BF16",
        ScalarType.Int64 => "I64",
        ScalarType.Int32 => "I32",
        ScalarType.Int16 => "I16",
        ScalarType.Int8 => "I8",
        ScalarType.Byte => "U8",
        ScalarType.Bool => "BOOL",
        _ => throw new NotSupportedException($"safetensors cannot store dtype {t}."),
    };
}
