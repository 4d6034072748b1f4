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

    /// <summary>
    /// The same values under autocast, in bytes: the two LayerNorm inputs are the fp32 residual
    /// stream (2 D x 4 bytes); what the products save is their bf16 inputs and outputs (7 D + 2 H,
    /// x 2 bytes): the LayerNorm outputs are kept only as the bf16 casts the Linears saved.
    /// </summary>
    public static long SavedBytesPerTokenAndBlockAutocast(VitConfig c) => 4L * 2 * c.EmbedDim + 2L * (7L * c.EmbedDim + 2L * c.MlpHiddenDim);

    /// <param name="autocast">The step runs under bf16 autocast (<c>--precision bf16</c>): parameters, gradients and
    /// AdamW stay fp32; the bf16 casts of the student's weights live from its forward to its backward (counted
    /// with the parameters), and the activations are as <see cref="SavedBytesPerTokenAndBlockAutocast"/>.</param>
    /// <param name="explicitAttention">The attention matrix is materialized: softmax keeps (heads x N) more values per token and block
    /// (fp32 values, also under autocast: the softmax output is fp32).</param>
    public static MemoryEstimate DistillStep(VitConfig teacher, VitConfig student, long teacherParams, long studentParams, int batch,
        int teacherBytesPerValue = 4, bool autocast = false, bool explicitAttention = false)
    {
        long tokens = 1 + student.NumPatches;
        long attentionBytes = explicitAttention ? 4L * student.NumHeads * tokens : 0;
        long perToken = (autocast ? SavedBytesPerTokenAndBlockAutocast(student) : 4 * SavedFloatsPerTokenAndBlock(student)) + attentionBytes;
        long saved = perToken * tokens * student.Depth * batch;
        long images = (long)batch * student.InChans * student.ImageSize * student.ImageSize;
        return new MemoryEstimate(
            Parameters: teacherParams * teacherBytesPerValue + studentParams * (autocast ? 4 + 2 : 4),
            Gradients: studentParams * 4,
            OptimizerState: 2 * studentParams * 4,
            Activations: saved,
            Inputs: images * 4);
    }
}
