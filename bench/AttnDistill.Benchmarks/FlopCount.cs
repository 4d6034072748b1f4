using AttnDistill.Models;
using AttnDistill.Pretraining;

namespace AttnDistill.Benchmarks;

/// <summary>
/// Analytic FLOP counts of the benchmarked workloads, counting matrix products only (2 m n k per
/// product: one multiply and one add), the usual convention of MFU figures. LayerNorm, softmax,
/// GELU, additions and the optimizer are left out: at ViT widths they are about 1-2 % of the
/// products, so "achieved FLOP/s" is slightly pessimistic, never inflated.
/// <para>
/// A backward pass costs two products per forward product (the gradient of the input and of the
/// weight); the patch embedding of an image needs no input gradient, so it costs one.
/// </para>
/// </summary>
public static class FlopCount
{
    /// <summary>One n x n by n x n matrix product.</summary>
    public static double SquareMatmul(long n) => 2.0 * n * n * n;

    /// <summary>
    /// One transformer block on one sequence of <paramref name="tokens"/> tokens: qkv (3 D^2),
    /// QK^T and AV (N D each, per token), output projection (D^2), MLP (2 D H). Per token:
    /// 2 (4 D^2 + 2 D H + 2 N D).
    /// </summary>
    public static double Block(long tokens, long dim, long mlpHidden) =>
        2.0 * tokens * (4.0 * dim * dim + 2.0 * dim * mlpHidden + 2.0 * tokens * dim);

    /// <summary>Patch embedding of one image: a p x p x C -> D product per patch.</summary>
    public static double PatchEmbed(VitConfig c, long patches) => 2.0 * patches * c.PatchSize * c.PatchSize * c.InChans * c.EmbedDim;

    /// <summary>
    /// Forward pass of a ViT on one image: patch embedding of every patch, then the blocks on
    /// 1 + <paramref name="keptPatches"/> tokens (all patches unless masked, as MAE's encoder).
    /// <paramref name="clsRowBlocks"/> blocks also compute an explicit CLS attention row (q_cls K^T, 2 N D).
    /// </summary>
    public static double VitForward(VitConfig c, long? keptPatches = null, int clsRowBlocks = 0)
    {
        long n = 1 + (keptPatches ?? c.NumPatches);
        return PatchEmbed(c, c.NumPatches) + c.Depth * Block(n, c.EmbedDim, c.MlpHiddenDim) + clsRowBlocks * 2.0 * n * c.EmbedDim;
    }

    /// <summary>Forward + backward of a trained ViT on one image (backward = 2x forward, patch embedding 1x).</summary>
    public static double VitTrain(VitConfig c, long? keptPatches = null, int clsRowBlocks = 0) =>
        3 * VitForward(c, keptPatches, clsRowBlocks) - PatchEmbed(c, c.NumPatches);

    /// <summary>Projector P on the CLS token only (LayerNorm, then Linear widths d -> 2d -> d ... -> D).</summary>
    public static double Projector(int studentDim, int teacherDim, int layers)
    {
        double flops = 0;
        int inDim = studentDim;
        for (int i = 1; i <= layers; i++)
        {
            int outDim = i == layers ? teacherDim : (i % 2 == 1 ? 2 * studentDim : studentDim);
            flops += 2.0 * inDim * outDim;
            inDim = outDim;
        }
        return flops;
    }

    /// <summary>
    /// One AttnDistill training step per image: the teacher's forward (no grad, CLS row of its last
    /// block) plus the student's forward and backward (CLS row of its last block, projector on CLS).
    /// </summary>
    public static double DistillStepPerImage(VitConfig teacher, VitConfig student, int projectorLayers) =>
        VitForward(teacher, clsRowBlocks: 1) + VitTrain(student, clsRowBlocks: 1) + 3 * Projector(student.EmbedDim, teacher.EmbedDim, projectorLayers);

    /// <summary>
    /// Forward of a masked autoencoder on one image: encoder on the visible tokens, decoder_embed on
    /// 1 + kept tokens, decoder blocks on 1 + L tokens, decoder_pred on 1 + L tokens.
    /// </summary>
    public static double MaeForward(MaeConfig m)
    {
        var e = m.Encoder;
        long kept = m.LenKeep, all = 1 + e.NumPatches;
        long decHidden = (long)(m.DecoderEmbedDim * e.MlpRatio);
        return VitForward(e, kept)
               + 2.0 * (1 + kept) * e.EmbedDim * m.DecoderEmbedDim
               + m.DecoderDepth * Block(all, m.DecoderEmbedDim, decHidden)
               + 2.0 * all * m.DecoderEmbedDim * m.PatchPixels;
    }

    /// <summary>One MAE training step per image: forward and backward (patch embedding has no input gradient).</summary>
    public static double MaeStepPerImage(MaeConfig m) => 3 * MaeForward(m) - PatchEmbed(m.Encoder, m.Encoder.NumPatches);

    /// <summary>k-NN similarity products: every query against every bank row.</summary>
    public static double KnnSimilarity(long bank, long queries, long dim) => 2.0 * bank * queries * dim;
}
