namespace AttnDistill.Distillation;

/// <summary>
/// How the per-head CLS attention rows [B, heads, 1 + N] become one row [B, 1 + N]
/// (docs/METHOD.md, section 1.4, and the Table 10(b) ablation). Every mode but <see cref="None"/>
/// ends with a temperature softmax, a = softmax(z / T), so T means the same thing for all of them.
/// </summary>
public enum AttentionAggregation
{
    /// <summary>The method's own: z = sum over heads of log A (a product of the heads' distributions).</summary>
    Product,
    /// <summary>z = max over heads of log A (= log of the head-wise max probability).</summary>
    Max,
    /// <summary>z = log of the mean over heads of A (the heads' mixture).</summary>
    Mean,
    /// <summary>z = min over heads of log A (= log of the head-wise min probability).</summary>
    Min,
    /// <summary>No aggregation: maps are compared head by head; head counts must be equal.</summary>
    None,
}
