namespace AttnDistill.Distillation;

/// <summary>The divergence of the attention term (docs/METHOD.md, section 1.6, and the Table 10(f) ablation).</summary>
public enum AttentionLossKind
{
    /// <summary>KL(A_t || A_s) with PyTorch's batchmean reduction (the method's own).</summary>
    KL,
    /// <summary>Mean squared error over all elements of the prepared maps (the ablation).</summary>
    MSE,
}
