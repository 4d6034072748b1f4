namespace AttnDistill.Data;

/// <summary>
/// Labels are class ranks: train and val must list the same classes in the same order, or every
/// label after the first difference means another class (an extra empty folder in train/ only,
/// a stray folder in val/) and the accuracy silently collapses.
/// </summary>
public static class ClassLists
{
    /// <summary>Throws <see cref="InvalidDataException"/> naming the differing classes when the splits' class lists differ.</summary>
    public static void RequireSame(IImageDataset train, IImageDataset val, string root)
    {
        if (train.ClassNames.SequenceEqual(val.ClassNames, StringComparer.Ordinal)) return;
        var onlyTrain = train.ClassNames.Except(val.ClassNames, StringComparer.Ordinal).ToList();
        var onlyVal = val.ClassNames.Except(train.ClassNames, StringComparer.Ordinal).ToList();
        static string List(List<string> names) => names.Count == 0 ? "none" :
            string.Join(", ", names.Take(5).Select(n => TerminalText.Safe(n, 60))) + (names.Count > 5 ? $", ... ({names.Count} in all)" : "");
        throw new InvalidDataException(
            $"{root}: the training split has {train.ClassNames.Count} classes and the val/test split {val.ClassNames.Count}, and they differ " +
            $"(only in train: {List(onlyTrain)}; only in val: {List(onlyVal)}): labels are class ranks, so they would not match; " +
            "give both splits the same class folders (an empty folder is allowed), or pass a --class-list.");
    }
}
