namespace AttnDistill.Data;

/// <summary>
/// Labelled subsets for semi-supervised runs: a seeded class-balanced fraction (1%, 10%), or a
/// list of file names in the format of SimCLR's ImageNet subset files (one name per line).
/// Both return sorted indices into the data set; wrap them in a <see cref="SubsetDataset"/>.
/// </summary>
public static class LabelSubsets
{
    /// <summary>
    /// Takes round(fraction x n_c) items (at least one) of every non-empty class c, chosen by a
    /// shuffle seeded with <paramref name="seed"/>: the class proportions of the data set are kept.
    /// </summary>
    public static int[] Fraction(IImageDataset dataset, double fraction, int seed)
    {
        if (!(fraction > 0 && fraction <= 1)) throw new ArgumentOutOfRangeException(nameof(fraction), $"fraction must be in (0, 1], got {fraction}");
        var byClass = new List<int>[dataset.ClassNames.Count];
        for (int c = 0; c < byClass.Length; c++) byClass[c] = new List<int>();
        for (int i = 0; i < dataset.Count; i++) byClass[dataset.Label(i)].Add(i);
        var chosen = new List<int>();
        for (int c = 0; c < byClass.Length; c++)
        {
            var items = byClass[c];
            if (items.Count == 0) continue;
            int take = Math.Max(1, (int)Math.Round(fraction * items.Count, MidpointRounding.AwayFromZero));
            var rng = new SampleRandom(seed, c);
            // Partial Fisher-Yates: the first `take` positions are a uniform sample without replacement.
            for (int k = 0; k < take; k++)
            {
                int j = k + (int)(rng.NextDouble() * (items.Count - k));
                (items[k], items[j]) = (items[j], items[k]);
            }
            chosen.AddRange(items.Take(take));
        }
        chosen.Sort();
        return chosen.ToArray();
    }

    /// <summary>
    /// Items whose file name (without folder) is listed in <paramref name="listPath"/>, one per line
    /// (blank lines skipped). A listed name that is not in the data set is an error.
    /// </summary>
    public static int[] FromFileList(IImageDataset dataset, string listPath)
    {
        var wanted = new HashSet<string>(File.ReadAllLines(listPath).Select(l => l.Trim()).Where(l => l.Length > 0), StringComparer.Ordinal);
        var found = new HashSet<string>(StringComparer.Ordinal);
        var chosen = new List<int>();
        for (int i = 0; i < dataset.Count; i++)
        {
            string name = Path.GetFileName(dataset.ItemName(i));
            if (wanted.Contains(name))
            {
                chosen.Add(i);
                found.Add(name);
            }
        }
        var missing = wanted.Where(w => !found.Contains(w)).ToList();
        if (missing.Count > 0)
            throw new InvalidDataException($"{listPath}: {missing.Count} of {wanted.Count} listed files are not in the data set, e.g. {string.Join(", ", missing.Take(3))}");
        return chosen.ToArray();
    }

    /// <summary>Writes the file names of the chosen items, one per line (the format <see cref="FromFileList"/> reads).</summary>
    public static void WriteFileList(IImageDataset dataset, IEnumerable<int> indices, string listPath) =>
        File.WriteAllLines(listPath, indices.Select(i => Path.GetFileName(dataset.ItemName(i))));
}
