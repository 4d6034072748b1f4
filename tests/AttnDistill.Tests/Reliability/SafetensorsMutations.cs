using System.Buffers.Binary;
using System.Text;
using System.Text.Json.Nodes;

namespace AttnDistill.Tests.Reliability;

/// <summary>
/// Structural mutations of a safetensors file: the header is parsed, edited as JSON and written
/// back with a consistent length field (unless the length is the lie), so the damage reaches the
/// reader's offset, overlap, size and duplicate checks rather than its JSON parser: entries sharing
/// one data offset, overlapping ranges, ranges past the end of the file, duplicate names, a length
/// field that lies, shapes and dtypes that disagree with their bytes, metadata of the wrong type.
/// </summary>
public static class SafetensorsMutations
{
    public static readonly string[] Kinds =
    {
        "st-shared-offset", "st-overlap", "st-past-end", "st-duplicate-key", "st-header-length", "st-shape-lie", "st-dtype-lie", "st-metadata",
    };

    public static (string Kind, byte[] Bytes) Mutate(byte[] file, Random rng)
    {
        ulong n = BinaryPrimitives.ReadUInt64LittleEndian(file);
        var header = (JsonObject)JsonNode.Parse(file.AsSpan(8, (int)n))!;
        byte[] data = file[(8 + (int)n)..];
        var tensors = header.Where(kv => kv.Key != "__metadata__").Select(kv => kv.Key).ToList();
        string Pick() => tensors[rng.Next(tensors.Count)];
        JsonArray Offsets(string name) => (JsonArray)header[name]!["data_offsets"]!;
        long Begin(string name) => (long)Offsets(name)[0]!;
        long End(string name) => (long)Offsets(name)[1]!;
        void SetOffsets(string name, long b, long e) => header[name]!["data_offsets"] = new JsonArray(b, e);
        string kind = Kinds[rng.Next(Kinds.Length)];
        string? duplicate = null;
        switch (kind)
        {
            case "st-shared-offset":
            {
                // Several entries made copies of one (same dtype, shape, offsets): each would be a full read of the same bytes.
                string first = Pick();
                int copies = 1 + rng.Next(Math.Max(1, tensors.Count - 1));
                foreach (string other in tensors.Where(t => t != first).OrderBy(_ => rng.Next()).Take(copies))
                {
                    header[other]!["dtype"] = header[first]!["dtype"]!.DeepClone();
                    header[other]!["shape"] = header[first]!["shape"]!.DeepClone();
                    SetOffsets(other, Begin(first), End(first));
                }
                break;
            }
            case "st-overlap":
            {
                // A range slid into its neighbour, keeping its length.
                string t = Pick();
                long len = End(t) - Begin(t), shift = rng.Next(2) == 0 ? -1 - rng.Next(64) : 1 + rng.Next(64);
                long b = Math.Clamp(Begin(t) + shift, 0, Math.Max(0, data.Length - len));
                SetOffsets(t, b, b + len);
                break;
            }
            case "st-past-end":
            {
                string t = Pick();
                long len = End(t) - Begin(t);
                long b = rng.Next(3) switch { 0 => data.Length - len / 2, 1 => data.Length + rng.Next(4096), _ => (1L << 62) - len };
                SetOffsets(t, b, b + len);
                break;
            }
            case "st-duplicate-key":
                duplicate = Pick();
                break;
            case "st-header-length":
                break;
            case "st-shape-lie":
            {
                // Shapes whose product overflows, is negative, or does not match the bytes.
                string t = Pick();
                header[t]!["shape"] = rng.Next(5) switch
                {
                    0 => new JsonArray(1L << 62, 1L << 62),
                    1 => new JsonArray(-1, 4),
                    2 => new JsonArray(0),
                    3 => new JsonArray(Enumerable.Range(0, 100).Select(_ => (JsonNode)JsonValue.Create(1)).ToArray()),
                    _ => new JsonArray(long.MaxValue),
                };
                break;
            }
            case "st-dtype-lie":
            {
                string t = Pick();
                header[t]!["dtype"] = new[] { "F64", "F16", "U8", "BOOL", "I64", "F8_E4M3", "C64", "" }[rng.Next(8)];
                break;
            }
            default:
            {
                // Metadata that is not str -> str (the training checkpoint reads numbers and JSON from it).
                JsonNode bad = rng.Next(4) switch
                {
                    0 => new JsonArray(1, 2),
                    1 => JsonValue.Create(42),
                    2 => new JsonObject { ["attndistill.epoch"] = new JsonArray(1), ["attndistill.step"] = new JsonObject() },
                    _ => new JsonObject { ["k"] = new string('x', 1 << 16) },
                };
                if (header["__metadata__"] is JsonObject meta && rng.Next(2) == 0 && meta.Count > 0)
                {
                    string key = meta.Select(kv => kv.Key).ElementAt(rng.Next(meta.Count));
                    meta[key] = bad is JsonObject o ? o.Select(kv => kv.Value?.DeepClone()).FirstOrDefault() ?? JsonValue.Create(0) : bad;
                }
                else header["__metadata__"] = bad;
                break;
            }
        }
        string json = header.ToJsonString();
        if (duplicate is not null)
        {
            // JsonObject cannot hold a name twice: the twin is spliced in as text, at the front.
            string twin = $"\"{duplicate}\":" + header[duplicate]!.ToJsonString();
            json = "{" + twin + "," + json[1..];
        }
        var bytes = Encoding.UTF8.GetBytes(json);
        ulong length = (ulong)bytes.Length;
        if (kind == "st-header-length")
            length = rng.Next(6) switch
            {
                0 => length + 1 + (ulong)rng.Next(16),
                1 => length - 1 - (ulong)rng.Next(Math.Min(16, bytes.Length - 1)),
                2 => (ulong)(bytes.Length + data.Length),
                3 => (ulong)(bytes.Length + data.Length + 1),
                4 => 1UL << 63,
                _ => 0,
            };
        var result = new byte[8 + bytes.Length + data.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(result, length);
        bytes.CopyTo(result, 8);
        data.CopyTo(result, 8 + bytes.Length);
        return (kind, result);
    }
}
