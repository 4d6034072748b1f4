using AttnDistill.Tensors;
using AttnDistill.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace AttnDistill.Distillation;

/// <summary>
/// Resamples a teacher's CLS attention rows to the student's patch grid (docs/METHOD.md, section 1.3),
/// so maps from different patch sizes can be compared token by token.
/// </summary>
public static class AttentionInterpolation
{
    /// <summary>Patches per side n of a CLS row of 1 + n^2 tokens; throws when the patches are not a square grid.</summary>
    public static int GridSide(long tokens)
    {
        return TokenGrid.SideOfTokens(tokens)
            ?? throw new ArgumentException($"an attention row of {tokens} tokens is not 1 CLS + a square grid of patches.");
    }

    /// <summary>
    /// [B, h, 1 + n_t^2] -> [B, h, 1 + n_s^2]: the CLS entry a0 is kept; the patch part is resized
    /// bicubically (align_corners false, as PyTorch's default) and rescaled to sum 1 - a0 per head,
    /// so each row still sums to 1. With <paramref name="clampNegative"/> the bicubic overshoot below 0
    /// is cut to 0 before the rescaling (see <see cref="DistillLossOptions.ClampInterpolation"/>).
    /// </summary>
    public static Tensor ToGrid(Tensor attention, int studentGrid, bool clampNegative = true)
    {
        if (attention.dim() != 3)
            throw new ArgumentException($"teacher attention must be [B, heads, 1 + N], got [{string.Join(", ", attention.shape)}].");
        if (studentGrid <= 0) throw new ArgumentException($"student grid must be positive, got {studentGrid}.");
        long b = attention.shape[0], h = attention.shape[1];
        int nT = GridSide(attention.shape[2]);
        if (nT == studentGrid) return attention.alias();

        using var scope = NewDisposeScope();
        var a0 = attention.narrow(2, 0, 1);                                      // (B, h, 1)
        var patch = attention.narrow(2, 1, (long)nT * nT).reshape(b, h, nT, nT); // (B, h, n_t, n_t)
        patch = nn.functional.interpolate(patch, size: new long[] { studentGrid, studentGrid },
            mode: InterpolationMode.Bicubic, align_corners: false);              // (B, h, n_s, n_s)
        patch = patch.reshape(b, h, (long)studentGrid * studentGrid);            // (B, h, n_s^2)
        if (clampNegative) patch = patch.ClampMin(0.0);
        patch = patch * (a0.SubtractedFrom(1L) / patch.sum(-1, keepdim: true));
        return cat(new[] { a0, patch }, 2).MoveToOuterDisposeScope();            // (B, h, 1 + n_s^2)
    }
}
