namespace AttnDistill.Data;

/// <summary>Finds which known format a folder holds and opens one split of it.</summary>
public static class DatasetFactory
{
    /// <summary>What the error message lists when nothing fits.</summary>
    public const string KnownFormats =
        "ImageFolder (ROOT/train/<class>/<image> and ROOT/val/... or ROOT/test/..., images .jpg .jpeg .png .bmp .webp; .tif .tiff .ppm .pgm are listed, as torchvision does, but unreadable here), " +
        "IDX (ROOT/train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], t10k-... as MNIST/Fashion-MNIST), " +
        "CIFAR-10 binary (ROOT[/cifar-10-batches-bin]/data_batch_1..5.bin, test_batch.bin), " +
        "CIFAR-100 binary (ROOT[/cifar-100-binary]/train.bin, test.bin), " +
        "LMDB (ROOT/train.lmdb, val.lmdb or test.lmdb, from `attndistill data pack` or the authors' folder2lmdb.py)";

    private static readonly string[] Cifar10Names =
        { "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck" };

    /// <summary>The format found at root (and the folder that holds its files), or null.</summary>
    public static (DataFormat Format, string Folder)? Detect(string root)
    {
        if (!Directory.Exists(root)) return null;
        if (new[] { "train", "val", "test" }.Any(s => Directory.Exists(Path.Combine(root, s))))
            return (DataFormat.ImageFolder, root);
        if (FindIdx(root, "train-images-idx3-ubyte") is not null || FindIdx(root, "t10k-images-idx3-ubyte") is not null)
            return (DataFormat.Idx, root);
        // After ImageFolder: folder2lmdb.py writes train.lmdb beside train/, and the folders are then what a plain --data means.
        if (new[] { "train", "val", "test" }.Any(s => LmdbExists(Path.Combine(root, s + ".lmdb"))))
            return (DataFormat.Lmdb, root);
        foreach (string dir in new[] { root, Path.Combine(root, "cifar-10-batches-bin") })
            if (File.Exists(Path.Combine(dir, "data_batch_1.bin")) || File.Exists(Path.Combine(dir, "test_batch.bin")))
                return (DataFormat.Cifar10Binary, dir);
        foreach (string dir in new[] { root, Path.Combine(root, "cifar-100-binary") })
            if (File.Exists(Path.Combine(dir, "train.bin")) || File.Exists(Path.Combine(dir, "test.bin")))
                return (DataFormat.Cifar100Binary, dir);
        return null;
    }

    /// <summary>
    /// Opens one split of the data set at root. Throws <see cref="DirectoryNotFoundException"/> or
    /// <see cref="InvalidDataException"/> naming the path and the known formats when nothing fits.
    /// </summary>
    /// <param name="classListPath">ImageFolder only: a file of class names (one a line) selecting classes.</param>
    /// <param name="keepGrayscale">IDX only: one channel instead of gray replicated to RGB.</param>
    public static IImageDataset Open(string root, DataSplit split, string? classListPath = null, bool keepGrayscale = false)
    {
        if (!Directory.Exists(root)) throw new DirectoryNotFoundException($"data folder not found: {root}. Known formats: {KnownFormats}");
        var found = Detect(root) ?? throw new InvalidDataException($"no known data set layout in {root}. Known formats: {KnownFormats}");
        if (classListPath is not null && found.Format != DataFormat.ImageFolder)
            throw new ArgumentException($"a class list only applies to ImageFolder data; {root} is {found.Format}");
        string dir = found.Folder;
        switch (found.Format)
        {
            case DataFormat.ImageFolder:
            {
                string[] names = split == DataSplit.Train ? new[] { "train" } : new[] { "val", "test" };
                string folder = names.Select(n => Path.Combine(dir, n)).FirstOrDefault(Directory.Exists)
                    ?? throw new DirectoryNotFoundException($"{root} is an ImageFolder layout but has no {string.Join(" or ", names)}/ folder");
                var classes = classListPath is null ? null : ImageFolderDataset.ReadClassList(classListPath);
                return new ImageFolderDataset(folder, classes);
            }
            case DataFormat.Idx:
            {
                string prefix = split == DataSplit.Train ? "train" : "t10k";
                string images = FindIdx(dir, $"{prefix}-images-idx3-ubyte") ?? throw Missing(dir, $"{prefix}-images-idx3-ubyte[.gz]");
                string labels = FindIdx(dir, $"{prefix}-labels-idx1-ubyte") ?? throw Missing(dir, $"{prefix}-labels-idx1-ubyte[.gz]");
                bool fashion = Path.GetFullPath(dir).Contains("fashion", StringComparison.OrdinalIgnoreCase);
                return new IdxDataset(images, labels, fashion ? IdxDataset.FashionMnistClasses : null, keepGrayscale);
            }
            case DataFormat.Cifar10Binary:
            {
                var files = split == DataSplit.Train
                    ? Enumerable.Range(1, 5).Select(i => Path.Combine(dir, $"data_batch_{i}.bin")).ToArray()
                    : new[] { Path.Combine(dir, "test_batch.bin") };
                foreach (string f in files) if (!File.Exists(f)) throw Missing(dir, Path.GetFileName(f));
                string meta = Path.Combine(dir, "batches.meta.txt");
                var names = File.Exists(meta) ? CifarBinaryDataset.ReadNames(meta) : Cifar10Names;
                return new CifarBinaryDataset(files, names, cifar100: false);
            }
            case DataFormat.Cifar100Binary:
            {
                string file = Path.Combine(dir, split == DataSplit.Train ? "train.bin" : "test.bin");
                if (!File.Exists(file)) throw Missing(dir, Path.GetFileName(file));
                string meta = Path.Combine(dir, "fine_label_names.txt");
                var names = File.Exists(meta) ? CifarBinaryDataset.ReadNames(meta) : Enumerable.Range(0, 100).Select(i => i.ToString()).ToArray();
                return new CifarBinaryDataset(new[] { file }, names, cifar100: true);
            }
            case DataFormat.Lmdb:
            {
                string[] names = split == DataSplit.Train ? new[] { "train.lmdb" } : new[] { "val.lmdb", "test.lmdb" };
                string path = names.Select(n => Path.Combine(dir, n)).FirstOrDefault(LmdbExists)
                    ?? throw Missing(dir, string.Join(" or ", names));
                return new LmdbImageDataset(path);
            }
            default:
                throw new InvalidOperationException($"unhandled format {found.Format}");
        }
    }

    private static bool LmdbExists(string path) => File.Exists(path) || File.Exists(Path.Combine(path, "data.mdb"));

    private static string? FindIdx(string dir, string baseName) =>
        new[] { baseName, baseName + ".gz" }.Select(n => Path.Combine(dir, n)).FirstOrDefault(File.Exists);

    private static FileNotFoundException Missing(string dir, string name) =>
        new($"{dir}: missing {name}. Known formats: {KnownFormats}");
}
