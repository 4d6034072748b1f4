using AttnDistill.Data;
using static TorchSharp.torch;

namespace AttnDistill.Evaluation;

/// <summary>Top-1/top-5 of a classifier (images -> logits) over one pass of a loader, in percent.</summary>
public static class ClassifierEvaluation
{
    public static ClassificationResult Evaluate(nn.Module<Tensor, Tensor> classifier, DataLoader loader, IProgress<(int Done, int Total)>? progress = null,
        CancellationToken cancel = default)
    {
        bool wasTraining = classifier.training;
        classifier.eval();
        long top1 = 0, top5 = 0, seen = 0;
        int done = 0;
        try
        {
            using var noGrad = no_grad();
            foreach (var batch in Data.DeviceFeed.ToDevice(loader.Epoch(0, 0, cancel), Runs.RunDevice.Of(classifier)))
            {
                using var scope = NewDisposeScope();
                var (c1, c5) = TopKAccuracy.Count(classifier.forward(batch.Images), batch.Labels);
                top1 += c1;
                top5 += c5;
                seen += batch.Count;
                progress?.Report((++done, loader.BatchesPerEpoch));
            }
        }
        finally
        {
            classifier.train(wasTraining);
        }
        if (seen == 0) throw new InvalidDataException("the evaluation split yielded no readable image.");
        return new ClassificationResult(top1 * 100.0 / seen, top5 * 100.0 / seen);
    }
}
