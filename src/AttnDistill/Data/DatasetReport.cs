namespace AttnDistill.Data;

/// <summary>What <see cref="DatasetInspector"/> found at a data folder (what <c>attndistill data inspect</c> prints).</summary>
public sealed record DatasetReport(string Root, DataFormat Format, IReadOnlyList<SplitReport> Splits);

/// <summary>One split: its classes, counts, image sizes and unreadable items.</summary>
/// <param name="Source">The folder or file the split was read from.</param>
/// <param name="CountsPerClass">Items per class, in label order.</param>
/// <param name="Sizes">Size statistics over the readable items examined (null if none).</param>
/// <param name="UnreadableCount">Items that could not be read (header, or full decode when asked).</param>
/// <param name="FirstUnreadable">The first few unreadable item names, in data set order.</param>
public sealed record SplitReport(
    DataSplit Split,
    string Source,
    int Count,
    IReadOnlyList<string> ClassNames,
    IReadOnlyList<int> CountsPerClass,
    ImageSizeStats? Sizes,
    int UnreadableCount,
    IReadOnlyList<string> FirstUnreadable)
{
    /// <summary>ImageFolder: image files torchvision's ImageFolder does not list (.gif), so not in <see cref="Count"/>.</summary>
    public int IgnoredImageFiles { get; init; }

    /// <summary>Items that could be read: <see cref="Count"/> lists unreadable files too.</summary>
    public int ReadableCount => Count - UnreadableCount;
}

/// <summary>Width/height range and mean over <see cref="Examined"/> readable items.</summary>
public sealed record ImageSizeStats(int MinWidth, int MaxWidth, int MinHeight, int MaxHeight, double MeanWidth, double MeanHeight, int Examined);

/// <summary>How thoroughly to inspect.</summary>
public sealed record InspectOptions
{
    /// <summary>Decode every image (finds truncated files, slower) instead of reading headers only.</summary>
    public bool FullDecode { get; init; }

    /// <summary>How many unreadable names to report per split.</summary>
    public int MaxUnreadableNames { get; init; } = 10;

    /// <summary>ImageFolder only: a class-list file selecting classes.</summary>
    public string? ClassListPath { get; init; }

    /// <summary>Threads reading images.</summary>
    public int Threads { get; init; } = Environment.ProcessorCount;
}
