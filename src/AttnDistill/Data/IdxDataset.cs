using System.Buffers.Binary;
using System.IO.Compression;

namespace AttnDistill.Data;

/// <summary>
/// MNIST / Fashion-MNIST in the IDX format (<c>*-images-idx3-ubyte</c> + <c>*-labels-idx1-ubyte</c>,
/// raw or gzip). The whole file is held in memory (47 MB for 60,000 28x28 images). Grayscale is
/// replicated to RGB (as PIL's <c>convert("RGB")</c>) unless <c>keepGrayscale</c> is set.
/// </summary>
public sealed class IdxDataset : IImageDataset
{
    /// <summary>Fashion-MNIST's class names in label order.</summary>
    public static IReadOnlyList<string> FashionMnistClasses { get; } = new[]
    {
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
    };

    /// <summary>MNIST's class names ("0" .. "9").</summary>
    public static IReadOnlyList<string> DigitClasses { get; } = Enumerable.Range(0, 10).Select(i => i.ToString()).ToArray();

    private readonly byte[] _images;
    private readonly byte[] _labels;
    private readonly int _imageOffset;
    private readonly int _labelOffset;

    public IdxDataset(string imagesPath, string labelsPath, IReadOnlyList<string>? classNames = null, bool keepGrayscale = false)
    {
        ImagesPath = imagesPath;
        _images = ReadMaybeGzip(imagesPath);
        _labels = ReadMaybeGzip(labelsPath);
        // Header: 0x00 0x00 <type 0x08 = ubyte> <ndim>, then ndim big-endian int32 sizes.
        if (_images.Length < 16 || _images[0] != 0 || _images[1] != 0 || _images[2] != 0x08 || _images[3] != 3)
            throw new InvalidDataException($"{imagesPath}: not an IDX file of unsigned-byte images (magic 0x00000803)");
        if (_labels.Length < 8 || _labels[0] != 0 || _labels[1] != 0 || _labels[2] != 0x08 || _labels[3] != 1)
            throw new InvalidDataException($"{labelsPath}: not an IDX file of unsigned-byte labels (magic 0x00000801)");
        int n = BinaryPrimitives.ReadInt32BigEndian(_images.AsSpan(4));
        Height = BinaryPrimitives.ReadInt32BigEndian(_images.AsSpan(8));
        Width = BinaryPrimitives.ReadInt32BigEndian(_images.AsSpan(12));
        int nl = BinaryPrimitives.ReadInt32BigEndian(_labels.AsSpan(4));
        _imageOffset = 16;
        _labelOffset = 8;
        if (n != nl) throw new InvalidDataException($"{imagesPath} has {n} images but {labelsPath} has {nl} labels");
        if (_images.Length < _imageOffset + (long)n * Width * Height || _labels.Length < _labelOffset + n)
            throw new InvalidDataException($"{imagesPath}: file shorter than its header says (truncated?)");
        Count = n;
        int maxLabel = n == 0 ? -1 : _labels.AsSpan(_labelOffset, n).ToArray().Max();
        ClassNames = classNames ?? (maxLabel < 10 ? DigitClasses : Enumerable.Range(0, maxLabel + 1).Select(i => i.ToString()).ToArray());
        if (maxLabel >= ClassNames.Count) throw new InvalidDataException($"{labelsPath}: label {maxLabel} but only {ClassNames.Count} class names");
        Channels = keepGrayscale ? 1 : 3;
    }

    public string ImagesPath { get; }
    public int Width { get; }
    public int Height { get; }
    public int Count { get; }
    public IReadOnlyList<string> ClassNames { get; }
    public int Channels { get; }
    public int Label(int index) => _labels[_labelOffset + CheckIndex(index)];
    public string ItemName(int index) => $"{ImagesPath}#{index}";

    public DecodedImage Load(int index)
    {
        int plane = Width * Height;
        var src = _images.AsSpan(_imageOffset + CheckIndex(index) * plane, plane);
        if (Channels == 1) return new DecodedImage(Width, Height, 1, src.ToArray());
        var rgb = new byte[plane * 3];
        for (int p = 0; p < plane; p++) rgb[3 * p] = rgb[3 * p + 1] = rgb[3 * p + 2] = src[p];
        return new DecodedImage(Width, Height, 3, rgb);
    }

    /// <summary>Reads a file whole, inflating it when it starts with the gzip magic (whatever its name).</summary>
    internal static byte[] ReadMaybeGzip(string path)
    {
        byte[] raw = File.ReadAllBytes(path);
        if (raw.Length < 2 || raw[0] != 0x1f || raw[1] != 0x8b) return raw;
        using var gz = new GZipStream(new MemoryStream(raw), CompressionMode.Decompress);
        using var outStream = new MemoryStream();
        gz.CopyTo(outStream);
        return outStream.ToArray();
    }

    private int CheckIndex(int index) =>
        (uint)index < (uint)Count ? index : throw new ArgumentOutOfRangeException(nameof(index), $"index {index} not in [0, {Count})");
}
