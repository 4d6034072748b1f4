using AttnDistill.Tensors;
using static TorchSharp.torch;

namespace AttnDistill.Distillation;

/// <summary>Row normalizations of attention maps (docs/METHOD.md, section 1.5).</summary>
public static class AttentionNormalization
{
    /// <summary>PyTorch's F.normalize(x, p=1, dim=-1): x / max(sum |x|, 1e-12) over the last axis.</summary>
    public static Tensor L1Normalize(Tensor x) =>
        nn.functional.normalize(x, p: 1.0, dim: -1, eps: 1e-12);

    /// <summary>
    /// Clamp to [min, max] (default [1e-5, 0.996]) then L1-renormalize each row: keeps log() finite in
    /// the KL and stops one token from carrying all the mass.
    /// </summary>
    public static Tensor ClampAndRenormalize(Tensor attention, double min = 1e-5, double max = 0.996)
    {
        using var scope = NewDisposeScope();
        return L1Normalize(attention.ClampTo(min, max)).MoveToOuterDisposeScope();
    }
}
