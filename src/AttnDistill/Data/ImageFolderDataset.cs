namespace AttnDistill.Data;

/// <summary>
/// torchvision's <c>ImageFolder</c>: <c>root/&lt;class&gt;/**/&lt;image&gt;</c>. Classes are the
/// sub-folders of root sorted by ordinal name; files are listed folder by folder (folders in
/// ordinal path order, files in ordinal name order), as torchvision's <c>make_dataset</c>, so
/// item i is the same image as in PyTorch. An empty class folder is allowed as torchvision's
/// <c>allow_empty=True</c> does (the class keeps its label and has no items); the evaluations then
/// check that train and val hold the same class list (<see cref="ClassLists.RequireSame"/>), so
/// labels never shift between splits. Folder links are followed as os.walk(followlinks=True)
/// does, but only to folders inside the root (or inside the class folder a top-level link names),
/// and a link back to a folder above it (a cycle) is refused; names that are not valid UTF-8
/// (which .NET cannot open) are refused by name.
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
        foreach (string c in classes)
            if (c.Contains('\uFFFD'))
                throw new InvalidDataException($"{root}: class folder '{TerminalText.Safe(c)}' has a name that is not valid UTF-8 (it cannot be opened here): rename it.");
        ClassNames = classes;

        var paths = new List<string>();
        var labels = new List<int>();
        string rootReal = RealPath(root);
        for (int c = 0; c < classes.Count; c++)
        {
            foreach (string file in ListImages(Path.Combine(root, classes[c]), rootReal, () => IgnoredImageFiles++))
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

    /// <summary>Image files left out as torchvision leaves them out (.gif: not in IMG_EXTENSIONS); `data inspect` reports the count.</summary>
    public int IgnoredImageFiles { get; private set; }

    private static IEnumerable<string> ListImages(string classDir, string rootReal, Action ignored)
    {
        // torchvision walks with os.walk (following links) and sorts by the folder path, then by file name.
        string classReal = RealPath(classDir);
        var dirs = new List<string>();
        var todo = new Stack<(string Dir, string Real)>();
        todo.Push((classDir, classReal));
        while (todo.Count > 0)
        {
            var (dir, real) = todo.Pop();
            dirs.Add(dir);
            foreach (string sub in Directory.EnumerateDirectories(dir, "*", new EnumerationOptions { AttributesToSkip = 0 }))
            {
                string subReal = new DirectoryInfo(sub).LinkTarget is null ? Path.Combine(real, Path.GetFileName(sub)) : RealPath(sub);
                if (new DirectoryInfo(sub).LinkTarget is not null)
                {
                    if (IsWithin(real, subReal))
                        throw new InvalidDataException($"{TerminalText.Safe(sub)} links to {TerminalText.Safe(subReal)}, a folder above it (a cycle that would list its images again and again): remove the link.");
                    if (!IsWithin(subReal, rootReal) && !IsWithin(subReal, classReal))
                        throw new InvalidDataException($"{TerminalText.Safe(sub)} links to {TerminalText.Safe(subReal)}, outside the data folder {rootReal}: links are followed only inside it; copy the images in, or link the whole class folder.");
                }
                todo.Push((sub, subReal));
            }
        }
        dirs.Sort(StringComparer.Ordinal);
        foreach (string dir in dirs)
        {
            var all = Directory.GetFiles(dir);
            foreach (string f in all)
                if (ImageDecoder.IgnoredImageExtensions.Any(e => f.EndsWith(e, StringComparison.OrdinalIgnoreCase))) ignored();
            var files = all.Where(f => ImageDecoder.HasImageExtension(f)).ToList();
            files.Sort(StringComparer.Ordinal);
            foreach (string f in files) yield return f;
        }
    }

    /// <summary>True when <paramref name="path"/> is <paramref name="folder"/> or inside it (both canonical).</summary>
    private static bool IsWithin(string path, string folder) =>
        path == folder || path.StartsWith(folder.TrimEnd('/') + "/", StringComparison.Ordinal);

    /// <summary>The canonical path (every link resolved), as os.path.realpath.</summary>
    internal static string RealPath(string path) => ImageFolderDatasetPaths.Real(path);
}

/// <summary>Canonical paths (os.path.realpath) for the ImageFolder walk and the run-folder checks.</summary>
public static class ImageFolderDatasetPaths
{
    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "realpath", SetLastError = true)]
    private static extern IntPtr NativeRealPath(string path, IntPtr resolved);

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "free")]
    private static extern void NativeFree(IntPtr p);

    /// <summary>The canonical path (every link resolved; a missing tail is kept as given).</summary>
    public static string Real(string path)
    {
        string full = Path.GetFullPath(path);
        if (!OperatingSystem.IsLinux()) return full;
        try
        {
            IntPtr p = NativeRealPath(full, IntPtr.Zero);
            if (p == IntPtr.Zero) return full;
            try { return System.Runtime.InteropServices.Marshal.PtrToStringUTF8(p) ?? full; }
            finally { NativeFree(p); }
        }
        catch (Exception e) when (e is EntryPointNotFoundException or DllNotFoundException) { return full; }
    }
}
