namespace AttnDistill.Data;

/// <summary>Finds the format of a data folder and summarises its splits (no printing: the CLI formats the report).</summary>
public static class DatasetInspector
{
    /// <summary>
    /// Inspects every split present at root. Throws as <see cref="DatasetFactory.Open"/> does when
    /// no known format is there.
    /// </summary>
    public static DatasetReport Inspect(string root, InspectOptions? options = null)
    {
        options ??= new InspectOptions();
        if (!Directory.Exists(root)) throw new DirectoryNotFoundException($"data folder not found: {root}. Known formats: {DatasetFactory.KnownFormats}");
        var found = DatasetFactory.Detect(root)
            ?? throw new InvalidDataException($"no known data set layout in {root}. Known formats: {DatasetFactory.KnownFormats}");
        var splits = new List<SplitReport>();
        foreach (var split in new[] { DataSplit.Train, DataSplit.Val })
        {
            IImageDataset ds;
            try
            {
                ds = DatasetFactory.Open(root, split, options.ClassListPath);
            }
            catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
            {
                continue; // that split is absent
            }
            splits.Add(InspectSplit(ds, split, options));
        }
        return new DatasetReport(root, found.Format, splits);
    }

    /// <summary>Summarises one opened data set.</summary>
    public static SplitReport InspectSplit(IImageDataset ds, DataSplit split, InspectOptions? options = null)
    {
        options ??= new InspectOptions();
        var counts = new int[ds.ClassNames.Count];
        for (int i = 0; i < ds.Count; i++) counts[ds.Label(i)]++;

        // Files are read in parallel into per-item slots, then summarised in index order (deterministic report).
        var sizes = new (int W, int H)?[ds.Count];
        bool headersOnly = ds is ImageFolderDataset && !options.FullDecode;
        ImageTooLargeException.Unwrap(() => Parallel.For(0, ds.Count, new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, options.Threads) }, i =>
        {
            if (headersOnly)
            {
                sizes[i] = ImageDecoder.TryReadSize(ds.ItemName(i));
                return;
            }
            try
            {
                var img = ds.Load(i);
                sizes[i] = (img.Width, img.Height);
            }
            catch (Exception e) when (e is (InvalidDataException or IOException or UnauthorizedAccessException) and not ImageTooLargeException)
            {
                sizes[i] = null;
            }
        }));

        var unreadable = Enumerable.Range(0, ds.Count).Where(i => sizes[i] is null).ToList();
        var ok = sizes.Where(s => s is not null).Select(s => s!.Value).ToList();
        ImageSizeStats? stats = ok.Count == 0 ? null : new ImageSizeStats(
            ok.Min(s => s.W), ok.Max(s => s.W), ok.Min(s => s.H), ok.Max(s => s.H),
            ok.Average(s => (double)s.W), ok.Average(s => (double)s.H), ok.Count);
        string source = ds switch
        {
            ImageFolderDataset f => f.Root,
            IdxDataset x => x.ImagesPath,
            _ => ds.Count > 0 ? ds.ItemName(0).Split('#')[0] : "",
        };
        return new SplitReport(split, source, ds.Count, ds.ClassNames, counts, stats, unreadable.Count,
            unreadable.Take(options.MaxUnreadableNames).Select(ds.ItemName).ToList())
        {
            IgnoredImageFiles = ds is ImageFolderDataset folder ? folder.IgnoredImageFiles : 0,
        };
    }
}
