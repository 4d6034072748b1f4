namespace AttnDistill.Tests.TestSupport;

/// <summary>The first n Fashion-MNIST training images as an IDX folder, to keep end-to-end runs short (no xunit: bench/soak links it).</summary>
public static class FashionMnistSlice
{
    public const string Root = "/usr/share/datasets/fashion-mnist";

    public static bool Available => File.Exists(Path.Combine(Root, "train-images-idx3-ubyte.gz"));

    /// <summary>A new folder under <paramref name="parent"/> (or the temp folder) with train and t10k files of n items each.</summary>
    public static string Create(int n, string? parent = null)
    {
        string dir = parent is null ? Directory.CreateTempSubdirectory("fmnist").FullName : Directory.CreateDirectory(Path.Combine(parent, "fmnist")).FullName;
        foreach (var (name, header, itemBytes) in new[] { ("train-images-idx3-ubyte", 16, 784), ("train-labels-idx1-ubyte", 8, 1) })
        {
            using var src = new System.IO.Compression.GZipStream(File.OpenRead(Path.Combine(Root, name + ".gz")), System.IO.Compression.CompressionMode.Decompress);
            var bytes = new byte[header + n * itemBytes];
            src.ReadExactly(bytes);
            bytes[4] = (byte)(n >> 24); bytes[5] = (byte)(n >> 16); bytes[6] = (byte)(n >> 8); bytes[7] = (byte)n;
            File.WriteAllBytes(Path.Combine(dir, name), bytes);
        }
        // The test split is required by the format detector; reuse the slice.
        File.Copy(Path.Combine(dir, "train-images-idx3-ubyte"), Path.Combine(dir, "t10k-images-idx3-ubyte"));
        File.Copy(Path.Combine(dir, "train-labels-idx1-ubyte"), Path.Combine(dir, "t10k-labels-idx1-ubyte"));
        return dir;
    }

    /// <summary>The first n training and the first testN test images: a real held-out split for k-NN.</summary>
    public static string Create(int n, int testN)
    {
        string dir = Create(n);
        foreach (var (name, header, itemBytes) in new[] { ("t10k-images-idx3-ubyte", 16, 784), ("t10k-labels-idx1-ubyte", 8, 1) })
        {
            using var src = new System.IO.Compression.GZipStream(File.OpenRead(Path.Combine(Root, name + ".gz")), System.IO.Compression.CompressionMode.Decompress);
            var bytes = new byte[header + testN * itemBytes];
            src.ReadExactly(bytes);
            bytes[4] = (byte)(testN >> 24); bytes[5] = (byte)(testN >> 16); bytes[6] = (byte)(testN >> 8); bytes[7] = (byte)testN;
            File.WriteAllBytes(Path.Combine(dir, name), bytes);
        }
        return dir;
    }
}
