using static TorchSharp.torch;

namespace AttnDistill.Evaluation;

/// <summary>Counts of correct top-1 / top-5 predictions, as timm's accuracy() without the percent.</summary>
public static class TopKAccuracy
{
    /// <param name="logits">[B, C] scores.</param>
    /// <param name="labels">[B] int64.</param>
    /// <returns>(correct in top 1, correct in top min(5, C)).</returns>
    public static (long Top1, long Top5) Count(Tensor logits, Tensor labels)
    {
        using var scope = NewDisposeScope();
        int five = (int)Math.Min(5, logits.shape[1]);
        var (_, pred) = logits.topk(five, dim: 1, largest: true, sorted: true);            // (B, 5)
        var correct = pred.eq(labels.to(pred.device).view(-1, 1));                          // (B, 5)
        var counts = stack(new[] { correct.narrow(1, 0, 1).sum(), correct.sum() }).cpu().data<long>().ToArray();
        return (counts[0], counts[1]);
    }
}
