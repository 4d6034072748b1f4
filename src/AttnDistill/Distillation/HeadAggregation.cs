using AttnDistill.Tensors;
using static TorchSharp.torch;

namespace AttnDistill.Distillation;

/// <summary>
/// Turns per-head CLS attention [B, h, 1 + N] into one distribution [B, 1 + N] (docs/METHOD.md, section
/// 1.4), so students and teachers with different head counts can be compared.
/// </summary>
/// <remarks>
/// The authors' public code has only the product (log-sum) aggregation. MAX, MEAN and MIN (Table 10(b))
/// are defined here the same way: reduce the heads' probabilities, then a = softmax(log(reduced) / T).
/// For max and min the log commutes with the reduction, so they reduce log A directly; mean reduces the
/// probabilities (a head mixture), because the mean of log A would just be the product with T * h.
/// </remarks>
public static class HeadAggregation
{
    /// <summary>
    /// Product: softmax(sum_h log A / T); Max: softmax(max_h log A / T); Min: softmax(min_h log A / T);
    /// Mean: softmax(log(mean_h A) / T) -- each over the 1 + N tokens. None returns the input unchanged.
    /// </summary>
    public static Tensor Aggregate(Tensor attention, AttentionAggregation mode, double temperature)
    {
        if (attention.dim() != 3)
            throw new ArgumentException($"attention must be [B, heads, 1 + N], got [{string.Join(", ", attention.shape)}].");
        if (mode == AttentionAggregation.None) return attention.alias();
        if (!(temperature > 0)) throw new ArgumentException($"attention temperature T must be > 0, got {temperature}.");

        using var scope = NewDisposeScope();
        Tensor z = mode switch                                   // (B, 1 + N)
        {
            AttentionAggregation.Product => attention.log().sum(1),
            AttentionAggregation.Max => attention.log().max(1).values,
            AttentionAggregation.Min => attention.log().min(1).values,
            AttentionAggregation.Mean => attention.mean(new long[] { 1 }).log(),
            _ => throw new ArgumentOutOfRangeException(nameof(mode), mode, null),
        };
        return z.DividedBy(temperature).softmax(-1).MoveToOuterDisposeScope();
    }
}
