using static TorchSharp.torch;

namespace AttnDistill.Distillation;

/// <summary>
/// "Weight by VALUE" (after ATS; supplement Table 10(f)): a token's attention is scaled by the L2 norm
/// of its value vector, then each row is L1-renormalized to a distribution again.
/// </summary>
public static class ValueWeighting
{
    /// <summary>attention [B, h, 1 + N] * valueNorms [B, h, 1 + N], then L1-normalized over the tokens.</summary>
    public static Tensor Apply(Tensor attention, Tensor valueNorms)
    {
        if (!attention.shape.SequenceEqual(valueNorms.shape))
            throw new ArgumentException($"value norms [{string.Join(", ", valueNorms.shape)}] must have the attention's shape [{string.Join(", ", attention.shape)}].");
        using var scope = NewDisposeScope();
        return AttentionNormalization.L1Normalize(attention * valueNorms).MoveToOuterDisposeScope();
    }
}
