using static TorchSharp.torch;

namespace AttnDistill.Visualization;

/// <summary>
/// The attention of one model on a batch of images, as the pictures show it.
/// </summary>
/// <param name="Name">Row title of the model (teacher or method name).</param>
/// <param name="Heads">Last block's per-head CLS attention rows as the model emits them, (B, heads, 1 + N):
/// CLS-to-CLS first, then the N patches in raster order; each row sums to 1.</param>
/// <param name="Aggregated">The model's aggregated map as the loss sees it (docs/METHOD.md, sections 1.4-1.5:
/// head aggregation with temperature T, clamp, L1 renormalization), on the model's own grid, (B, 1 + N).</param>
/// <param name="KlToTeacher">Students only: KL(A_t || A_s) per image, (B), of the prepared maps on the
/// student's grid (the teacher's map interpolated to it): the loss's unweighted attention term.</param>
public sealed record ModelAttention(string Name, Tensor Heads, Tensor Aggregated, Tensor? KlToTeacher) : IDisposable
{
    /// <summary>Heads of this model.</summary>
    public int HeadCount => (int)Heads.shape[1];

    /// <summary>Patches per side of this model's grid.</summary>
    public int Grid => Distillation.AttentionInterpolation.GridSide(Heads.shape[2]);

    public void Dispose()
    {
        Heads.Dispose();
        Aggregated.Dispose();
        KlToTeacher?.Dispose();
    }
}
