using AttnDistill.Data;

namespace AttnDistill.Evaluation;

/// <summary>
/// Which labelled training images an evaluation may use (the semi-supervised protocol): all, a
/// seeded class-balanced fraction (1 %, 10 %), or the files named in a list (SimCLR's subset files).
/// </summary>
public sealed record LabelSelection
{
    public static readonly LabelSelection All = new();

    /// <summary>Fraction of every class, in (0, 1]; null: no fraction.</summary>
    public double? Fraction { get; init; }
    /// <summary>A file with one image name per line; null: no list.</summary>
    public string? FileList { get; init; }
    /// <summary>Seeds the choice of a fraction.</summary>
    public int Seed { get; init; }

    public bool IsAll => Fraction is null && FileList is null;

    public LabelSelection Validate()
    {
        if (Fraction is not null && FileList is not null)
            throw new ArgumentException("--label-fraction and --label-file both given: choose one.");
        if (Fraction is { } f && !(f > 0 && f <= 1))
            throw new ArgumentException($"--label-fraction must be in (0, 1] (e.g. 0.01 or 0.1), got {f}.");
        if (FileList is { } path && !File.Exists(path))
            throw new FileNotFoundException($"--label-file {path} not found: give a text file with one training image name per line.");
        return this;
    }

    /// <summary>Sorted data set indices of the labelled images, or null for all of them.</summary>
    public int[]? Indices(IImageDataset train)
    {
        Validate();
        if (Fraction is { } f) return LabelSubsets.Fraction(train, f, Seed);
        if (FileList is { } path) return LabelSubsets.FromFileList(train, path);
        return null;
    }

    /// <summary>The file a run writes its labelled images to (the format --label-file reads), so the subset can be reused.</summary>
    public const string RunFileName = "labelled-images.txt";

    /// <summary>
    /// Writes the labelled images (<paramref name="indices"/> of the whole training split
    /// <paramref name="train"/>, as <see cref="Indices"/> gave them) into the run folder; returns the path.
    /// </summary>
    public static string SaveInRun(IImageDataset train, IEnumerable<int> indices, string outDir)
    {
        Directory.CreateDirectory(outDir);
        string path = Path.Combine(outDir, RunFileName);
        LabelSubsets.WriteFileList(train, indices, path);
        return path;
    }

    /// <summary>The training split restricted to the labelled images.</summary>
    public IImageDataset Apply(IImageDataset train) => Indices(train) is { } idx ? new SubsetDataset(train, idx) : train;

    /// <summary>For metrics.json and cache keys.</summary>
    public string Describe() => Fraction is { } f ? $"fraction {f} (seed {Seed})" : FileList is { } p ? $"file {Path.GetFileName(p)}" : "all";
}
