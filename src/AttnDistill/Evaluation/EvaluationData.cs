using AttnDistill.Data;
using AttnDistill.Data.Transforms;

namespace AttnDistill.Evaluation;

/// <summary>The two splits an evaluation reads, and the loaders it reads them with.</summary>
public static class EvaluationData
{
    /// <summary>Train split (restricted to the labelled images) and the val/test split of a data root.</summary>
    public static (IImageDataset Train, IImageDataset Val) Open(string root, LabelSelection labels, string? classList = null)
    {
        var train = labels.Apply(DatasetFactory.Open(root, DataSplit.Train, classList));
        var val = DatasetFactory.Open(root, DataSplit.Val, classList);
        ClassLists.RequireSame(train, val, root);
        if (train.Count == 0) throw new InvalidDataException($"{root}: the training split has no image.");
        if (val.Count == 0) throw new InvalidDataException($"{root}: the val/test split has no image.");
        return (train, val);
    }

    /// <summary>DINO's evaluation view in data set order: resize the short side to S*256/224 (bicubic), center-crop S.</summary>
    public static DataLoader EvalLoader(IImageDataset dataset, int imageSize, int batchSize, int workers, Action<string>? log = null) =>
        new(dataset, TransformPresets.Eval(imageSize), new DataLoaderOptions { BatchSize = batchSize, Shuffle = false, Workers = workers, Log = log });
}
