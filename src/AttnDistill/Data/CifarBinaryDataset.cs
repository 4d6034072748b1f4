namespace AttnDistill.Data;

/// <summary>
/// CIFAR-10 / CIFAR-100 "binary version" batches. CIFAR-10 records are 1 label byte + 3072 pixel
/// bytes; CIFAR-100 records are coarse label + fine label + 3072 bytes (the fine label is used).
/// Pixels are stored as three 32x32 planes (R, G, B) and are returned interleaved (HWC).
/// </summary>
public sealed class CifarBinaryDataset : IImageDataset
{
    private const int Side = 32;
    private const int Plane = Side * Side;
    private readonly List<(string Path, byte[] Bytes)> _files = new();
    private readonly List<(int File, int Record)> _items = new();
    private readonly int _labelBytes;

    /// <param name="files">The batch files of one split, in order (e.g. data_batch_1..5.bin).</param>
    /// <param name="classNames">Class names in label order (batches.meta.txt / fine_label_names.txt).</param>
    /// <param name="cifar100">Records carry a coarse and a fine label byte.</param>
    public CifarBinaryDataset(IEnumerable<string> files, IReadOnlyList<string> classNames, bool cifar100)
    {
        _labelBytes = cifar100 ? 2 : 1;
        int recordSize = _labelBytes + 3 * Plane;
        ClassNames = classNames;
        foreach (string path in files)
        {
            byte[] bytes = File.ReadAllBytes(path);
            if (bytes.Length == 0 || bytes.Length % recordSize != 0)
                throw new InvalidDataException($"{path}: {bytes.Length} bytes is not a whole number of {recordSize}-byte CIFAR-{(cifar100 ? 100 : 10)} records");
            int f = _files.Count;
            _files.Add((path, bytes));
            for (int r = 0; r < bytes.Length / recordSize; r++)
            {
                if (bytes[r * recordSize + _labelBytes - 1] >= classNames.Count)
                    throw new InvalidDataException($"{path}: record {r} has label {bytes[r * recordSize + _labelBytes - 1]}, beyond the {classNames.Count} class names");
                _items.Add((f, r));
            }
        }
    }

    /// <summary>Reads class names from a text file, one per line, blank lines skipped (CIFAR's meta files).</summary>
    public static IReadOnlyList<string> ReadNames(string path) =>
        File.ReadAllLines(path).Select(l => l.Trim()).Where(l => l.Length > 0).ToList();

    public int Count => _items.Count;
    public IReadOnlyList<string> ClassNames { get; }
    public int Channels => 3;

    public int Label(int index)
    {
        var (f, r) = _items[index];
        return _files[f].Bytes[r * (_labelBytes + 3 * Plane) + _labelBytes - 1];
    }

    public string ItemName(int index) => $"{_files[_items[index].File].Path}#{_items[index].Record}";

    public DecodedImage Load(int index)
    {
        var (f, r) = _items[index];
        var src = _files[f].Bytes.AsSpan(r * (_labelBytes + 3 * Plane) + _labelBytes, 3 * Plane);
        var hwc = new byte[3 * Plane];
        for (int p = 0; p < Plane; p++)
        {
            hwc[3 * p] = src[p];
            hwc[3 * p + 1] = src[Plane + p];
            hwc[3 * p + 2] = src[2 * Plane + p];
        }
        return new DecodedImage(Side, Side, 3, hwc);
    }
}
