using System.Text;
using AttnDistill.Checkpoints;
using AttnDistill.Data;
using AttnDistill.Data.Transforms;
using SkiaSharp;
using TorchSharp;
using static TorchSharp.torch;

namespace AttnDistill.Visualization;

/// <summary>
/// The attention pictures of <c>attndistill visualize</c> (supplement Figures 9-11), callable from
/// any command: for each image one PNG panel (and/or the raw maps as .npy), plus kl.csv and an index
/// page (index.html and index.md) over all of them.
/// </summary>
public static class AttentionPanels
{
    /// <summary>
    /// Loads the checkpoints (all built for one input size, see <see cref="AttentionPanelOptions.ImageSize"/>)
    /// onto the run's device and renders into its folder; the maps come to the host only to be drawn or saved.
    /// </summary>
    public static IReadOnlyList<PanelResult> Render(NamedCheckpoint teacher, IReadOnlyList<NamedCheckpoint> students,
        IReadOnlyList<PanelImage> images, Runs.RunContext ctx, AttentionPanelOptions options)
    {
        string outDir = ctx.OutDir;
        var log = ctx.Log;
        var cancellation = ctx.Stop;
        ArgumentNullException.ThrowIfNull(teacher);
        ArgumentNullException.ThrowIfNull(students);
        if (students.Count == 0) throw new ArgumentException("give at least one student (--student NAME=CHECKPOINT).");
        options = options.Validate();
        var device = ctx.Device;
        var loaded = new List<NamedModel>();
        try
        {
            var (t, tConfig) = VitCheckpointLoader.Load(teacher.Path, new VitInferenceOptions { NumHeads = teacher.Heads }, imageSize: options.ImageSize, info: log);
            loaded.Add(new NamedModel(teacher.Name, t));
            int size = options.ImageSize ?? tConfig.ImageSize;
            foreach (var s in students)
            {
                var (m, _) = VitCheckpointLoader.Load(s.Path, new VitInferenceOptions { NumHeads = s.Heads }, imageSize: size, info: log);
                loaded.Add(new NamedModel(s.Name, m));
            }
            foreach (var m in loaded) m.Model.to(device);
            var results = Render(loaded[0], loaded.Skip(1).ToList(), images, outDir, options with { ImageSize = size }, log, cancellation);
            ctx.RecordRun("visualize");
            return results;
        }
        finally
        {
            foreach (var m in loaded) m.Model.Dispose();
        }
    }

    /// <summary>
    /// Renders with loaded models (their device is used as is). Images go through the evaluation
    /// transform (resize S*256/224, center crop S) with S = <see cref="AttentionPanelOptions.ImageSize"/>,
    /// or the teacher's image size. Images that cannot be decoded are reported and skipped.
    /// </summary>
    public static IReadOnlyList<PanelResult> Render(NamedModel teacher, IReadOnlyList<NamedModel> students,
        IReadOnlyList<PanelImage> images, string outDir, AttentionPanelOptions options, Action<string>? log = null, CancellationToken cancellation = default)
    {
        ArgumentNullException.ThrowIfNull(teacher);
        ArgumentNullException.ThrowIfNull(students);
        ArgumentNullException.ThrowIfNull(images);
        if (students.Count == 0) throw new ArgumentException("give at least one student.");
        if (images.Count == 0) throw new ArgumentException("no images to draw.");
        options = options.Validate();
        int size = options.ImageSize ?? teacher.Model.Config.ImageSize;
        foreach (var m in students.Prepend(teacher))
            if (size % m.Model.Config.PatchSize != 0)
                throw new ArgumentException($"image size {size} is not a multiple of the patch size {m.Model.Config.PatchSize} of '{m.Name}': pass an image size all patch sizes divide.");
        Directory.CreateDirectory(outDir);
        var transform = TransformPresets.Eval(size);
        using var lookup = HeatmapColors.Lookup(options.Colormap);
        bool png = options.Format is AttentionOutputFormat.Png or AttentionOutputFormat.Both;
        bool npy = options.Format is AttentionOutputFormat.Npy or AttentionOutputFormat.Both;

        var results = new List<PanelResult>();
        for (int start = 0; start < images.Count; start += options.BatchSize)
        {
            cancellation.ThrowIfCancellationRequested();
            var chunk = new List<(int Index, PanelImage Image, DecodedImage Pixels)>();
            for (int i = start; i < Math.Min(images.Count, start + options.BatchSize); i++)
            {
                try
                {
                    chunk.Add((i, images[i], transform.Apply(AsRgb(images[i].Load()), new SampleRandom(i))));
                }
                catch (Exception ex) when (ex is InvalidDataException or IOException)
                {
                    log?.Invoke($"skipped {images[i].Name}: {ex.Message}");
                }
            }
            if (chunk.Count == 0) continue;

            using var scope = NewDisposeScope();
            int imageBytes = size * size * 3;
            var bytes = new byte[chunk.Count * imageBytes];
            for (int b = 0; b < chunk.Count; b++) Buffer.BlockCopy(chunk[b].Pixels.Pixels, 0, bytes, b * imageBytes, imageBytes);
            var input = ImageTensors.BatchFromHwc(bytes, chunk.Count, size, size, 3, ImageTensors.ImageNetMean, ImageTensors.ImageNetStd);
            var display = ImageTensors.BatchFromHwc(bytes, chunk.Count, size, size, 3, null, null);   // (B, 3, S, S) in [0, 1]
            using var maps = AttentionMapSet.Compute(teacher, students, input, options.Loss);
            // PNG encoding (zlib) costs more than drawing: panels are drawn in order and encoded a few at a time in parallel.
            var pending = new List<(SKBitmap Bitmap, string Path)>();
            try
            {
                for (int b = 0; b < chunk.Count; b++)
                {
                    var (index, image, _) = chunk[b];
                    string stem = Path.Combine(outDir, FileStem(index, image));
                    string? pngPath = null;
                    if (png)
                    {
                        pngPath = stem + ".png";
                        pending.Add((AttentionPanel.Render(maps, b, display[b], DisplayName(image), options, lookup), pngPath));
                        if (pending.Count >= Environment.ProcessorCount) SaveAll(pending);
                    }
                    var npyPaths = npy ? WriteNpy(maps, b, stem) : Array.Empty<string>();
                    var kls = maps.Students.Select(s => (double)s.KlToTeacher!.data<float>()[b]).ToArray();
                    results.Add(new PanelResult(image.Name, image.Group, pngPath, npyPaths, kls));
                }
                SaveAll(pending);
            }
            finally
            {
                foreach (var (bitmap, _) in pending) bitmap.Dispose();
            }
            log?.Invoke($"attention pictures: {results.Count} of {images.Count} images");
        }
        GalleryIndex.Write(outDir, teacher.Name, students.Select(s => s.Name).ToList(), results, options);
        return results;
    }

    /// <summary>Every image file given, folders searched recursively (sorted by path); the group is the parent folder's name for files found in a folder.</summary>
    public static IReadOnlyList<PanelImage> FromFiles(IEnumerable<string> filesOrFolders)
    {
        var list = new List<PanelImage>();
        foreach (string p in filesOrFolders)
        {
            if (Directory.Exists(p))
            {
                var files = Directory.EnumerateFiles(p, "*", SearchOption.AllDirectories).Where(ImageDecoder.HasImageExtension).ToList();
                files.Sort(StringComparer.Ordinal);
                foreach (string f in files)
                {
                    string group = Path.GetRelativePath(p, Path.GetDirectoryName(f)!);
                    list.Add(new PanelImage(Path.GetFileName(f), group == "." ? "" : group, () => ImageDecoder.DecodeFile(f)));
                }
            }
            else if (File.Exists(p))
            {
                list.Add(new PanelImage(Path.GetFileName(p), "", () => ImageDecoder.DecodeFile(p)));
            }
            else
            {
                throw new FileNotFoundException($"image or folder not found: {p}");
            }
        }
        if (list.Count == 0) throw new InvalidDataException($"no images ({string.Join(" ", ImageDecoder.Extensions)}) in {string.Join(", ", filesOrFolders)}.");
        return list;
    }

    /// <summary>
    /// The first <paramref name="perClass"/> images (in data set order) of every class of a data set:
    /// any layout <see cref="DatasetFactory"/> knows (the given split), or a bare class-folder root
    /// (ROOT/&lt;class&gt;/&lt;image&gt;).
    /// </summary>
    public static IReadOnlyList<PanelImage> PerClass(string root, int perClass, DataSplit split = DataSplit.Val)
    {
        if (perClass <= 0) throw new ArgumentException($"images per class must be positive, got {perClass}.");
        IImageDataset data = DatasetFactory.Detect(root) is null && Directory.Exists(root)
            ? new ImageFolderDataset(root)
            : DatasetFactory.Open(root, split);
        var taken = new int[data.ClassNames.Count];
        var list = new List<PanelImage>();
        for (int i = 0; i < data.Count; i++)
        {
            int label = data.Label(i);
            if (taken[label] >= perClass) continue;
            taken[label]++;
            int index = i;
            string name = data.ItemName(i);
            // Files are named by their file name; records of IDX/CIFAR files by "<file>#<record>".
            list.Add(new PanelImage(Path.GetFileName(name), data.ClassNames[label], () => data.Load(index)));
        }
        if (list.Count == 0) throw new InvalidDataException($"{root} holds no images.");
        return list;
    }

    static void SaveAll(List<(SKBitmap Bitmap, string Path)> pending)
    {
        Parallel.ForEach(pending, p => RgbPicture.SavePng(p.Bitmap, p.Path));
        foreach (var (bitmap, _) in pending) bitmap.Dispose();
        pending.Clear();
    }

    /// <summary>Writes the raw maps of image b: per model its head rows (h, 1 + N) and aggregated map (1 + N), CLS entry first.</summary>
    static string[] WriteNpy(AttentionMapSet maps, int b, string stem)
    {
        var paths = new List<string>();
        var rows = new[] { ("teacher", maps.Teacher) }.Concat(maps.Students.Select((s, j) => ($"student{j + 1}-{Sanitize(s.Name)}", s)));
        foreach (var (tag, m) in rows)
        {
            using var heads = m.Heads[b];
            using var aggregated = m.Aggregated[b];
            string h = $"{stem}_{tag}_heads.npy", a = $"{stem}_{tag}_aggr.npy";
            NpyFile.Write(h, heads);
            NpyFile.Write(a, aggregated);
            paths.Add(h);
            paths.Add(a);
        }
        return paths.ToArray();
    }

    static DecodedImage AsRgb(DecodedImage image)
    {
        if (image.Channels == 3) return image;
        var rgb = new byte[image.Pixels.Length * 3];
        for (int i = 0; i < image.Pixels.Length; i++) rgb[3 * i] = rgb[3 * i + 1] = rgb[3 * i + 2] = image.Pixels[i];
        return new DecodedImage(image.Width, image.Height, 3, rgb);
    }

    static string DisplayName(PanelImage image) => image.Group.Length > 0 ? $"{image.Group}/{image.Name}" : image.Name;

    static string FileStem(int index, PanelImage image)
    {
        string name = image.Name.Contains('#') ? image.Name : Path.GetFileNameWithoutExtension(image.Name);
        return $"{index:D4}_{Sanitize(image.Group.Length > 0 ? image.Group + "_" + name : name)}";
    }

    /// <summary>Letters, digits, '.', '-' and '_' kept; everything else becomes '_'.</summary>
    public static string Sanitize(string name)
    {
        var sb = new StringBuilder(name.Length);
        foreach (char c in name) sb.Append(char.IsAsciiLetterOrDigit(c) || c is '.' or '-' or '_' ? c : '_');
        return sb.Length == 0 ? "image" : sb.ToString();
    }
}
