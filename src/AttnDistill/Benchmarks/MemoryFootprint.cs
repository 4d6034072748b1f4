using AttnDistill.Models;

namespace AttnDistill.Benchmarks;

/// <summary>Analytic memory of one training step, by part, in bytes.</summary>
public sealed record MemoryEstimate(long Parameters, long Gradients, long OptimizerState, long Activations, long Inputs)
{
    public long Total => Parameters + Gradients + OptimizerState + Activations + Inputs;
}

/// <summary>
/// What a distillation step must hold at its peak (the end of the student's forward): every
/// parameter, the student's gradients and AdamW's two moments (fp32), the activations autograd
/// saves for the student's backward, and the input batch. The teacher runs without grad, so its
/// activations are transient and not counted.
/// </summary>
public static class MemoryFootprint
{
    /// <summary>
    /// Floats autograd keeps per token and block of a pre-norm ViT block with fused attention:
    /// LayerNorm 1 input (D) and output (D, the qkv input), q, k, v (3D), the attention output (D),
    /// the merged heads (D, the projection input), LayerNorm 2 input (D) and output (D, the fc1
    /// input), the fc1 output (4D, GELU input) and the GELU output (4D, fc2 input): 17 D with an
    /// MLP ratio of 4 (9 D + 2 H in general). LayerNorm statistics and the softmax log-sum-exp
    /// (a few floats per token) are left out.
    /// </summary>
    public static long SavedFloatsPerTokenAndBlock(VitConfig c) => 9L * c.EmbedDim + 2L * c.MlpHiddenDim;

    /// <param name="bf16Student">The student computes in bf16 (<c>BFloat16Task</c>): activations are 2 bytes, plus a bf16 copy of its weights and gradients.</param>
    /// <param name="explicitAttention">The attention matrix is materialized: softmax keeps (heads x N) more values per token and block.</param>
    public static MemoryEstimate DistillStep(VitConfig teacher, VitConfig student, long teacherParams, long studentParams, int batch,
        int teacherBytesPerValue = 4, bool bf16Student = false, bool explicitAttention = false)
    {
        long tokens = 1 + student.NumPatches;
        long perToken = SavedFloatsPerTokenAndBlock(student) + (explicitAttention ? (long)student.NumHeads * tokens : 0);
        long saved = perToken * tokens * student.Depth * batch;
        long images = (long)batch * student.InChans * student.ImageSize * student.ImageSize;
        int activationBytes = bf16Student ? 2 : 4;
        return new MemoryEstimate(
            Parameters: teacherParams * teacherBytesPerValue + studentParams * (bf16Student ? 4 + 2 : 4),
            Gradients: studentParams * (bf16Student ? 4 + 2 : 4),
            OptimizerState: 2 * studentParams * 4,
            Activations: saved * activationBytes,
            Inputs: images * 4);
    }
}
