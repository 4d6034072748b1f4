namespace AttnDistill.Data;

/// <summary>
/// torchvision's <c>ImageFolder</c>: <c>root/&lt;class&gt;/**/&lt;image&gt;</c>. Classes are the
/// sub-folders of root sorted by ordinal name; files are listed folder by folder (folders in
/// ordinal path order, files in ordinal name order), as torchvision's <c>make_dataset</c>, so
/// item i is the same image as in PyTorch. Unlike torchvision an empty class folder is allowed
/// (the class keeps its label and has no items).
/// </summary>
public sealed class ImageFolderDataset : IImageDataset
{
    private readonly string[] _paths;
    private readonly int[] _labels;

    /// <param name="root">Folder whose sub-folders are the classes.</param>
    /// <param name="classSubset">
    /// If given, only these classes are used (ImageNet-Subset from a class list, no copying);
    /// labels are their ranks in ordinal order. A name without a folder is an error.
    /// </param>
    public ImageFolderDataset(string root, IEnumerable<string>? classSubset = null)
    {
        if (!Directory.Exists(root)) throw new DirectoryNotFoundException($"ImageFolder root not found: {root}");
        Root = root;
        var all = Directory.GetDirectories(root).Select(Path.GetFileName).Select(n => n!).ToList();
        all.Sort(StringComparer.Ordinal);
        List<string> classes;
        if (classSubset is null)
        {
            classes = all;
        }
        else
        {
            var wanted = classSubset.Distinct().ToList();
            var missing = wanted.Where(c => !all.Contains(c, StringComparer.Ordinal)).ToList();
            if (missing.Count > 0)
                throw new ArgumentException(
                    $"class list names {missing.Count} class(es) with no folder under {root}: {string.Join(", ", missing.Take(5))}{(missing.Count > 5 ? ", ..." : "")}");
            classes = wanted;
            classes.Sort(StringComparer.Ordinal);
        }
        if (classes.Count == 0) throw new InvalidDataException($"no class folders under {root}");
        ClassNames = classes;

        var paths = new List<string>();
        var labels = new List<int>();
        for (int c = 0; c < classes.Count; c++)
        {
            foreach (string file in ListImages(Path.Combine(root, classes[c])))
            {
                paths.Add(file);
                labels.Add(c);
            }
        }
        _paths = paths.ToArray();
        _labels = labels.ToArray();
    }

    /// <summary>Reads a class-list file: one class (folder) name per line; blank lines and lines starting with '#' are skipped.</summary>
    public static IReadOnlyList<string> ReadClassList(string path) =>
        File.ReadAllLines(path).Select(l => l.Trim()).Where(l => l.Length > 0 && !l.StartsWith('#')).ToList();

    public string Root { get; }
    public int Count => _paths.Length;
    public IReadOnlyList<string> ClassNames { get; }
    public int Channels => 3;
    public int Label(int index) => _labels[index];
    public DecodedImage Load(int index) => ImageDecoder.DecodeFile(_paths[index]);
    public string ItemName(int index) => _paths[index];

    /// <summary>Number of items per class, in label order.</summary>
    public int[] CountsPerClass()
    {
        var counts = new int[ClassNames.Count];
        foreach (int l in _labels) counts[l]++;
        return counts;
    }

    private static IEnumerable<string> ListImages(string classDir)
    {
        // torchvision walks with os.walk (following links) and sorts by the folder path, then by file name.
        var dirs = new List<string> { classDir };
        dirs.AddRange(Directory.EnumerateDirectories(classDir, "*", new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = 0 }));
        dirs.Sort(StringComparer.Ordinal);
        foreach (string dir in dirs)
        {
            var files = Directory.GetFiles(dir).Where(f => ImageDecoder.HasImageExtension(f)).ToList();
            files.Sort(StringComparer.Ordinal);
            foreach (string f in files) yield return f;
        }
    }
}
