using AttnDistill.Tensors;
using static TorchSharp.torch;

namespace AttnDistill.Distillation;

/// <summary>
/// The AttnDistill loss of one training step (docs/METHOD.md, section 1), as a pure function of tensors:
/// L = w_cls * MSE(f_s, f_t) + lambda * sum over blocks of D(A_t || A_s).
/// The teacher side is detached here, so its graph (if any) is never touched.
/// </summary>
public static class AttentionDistillLoss
{
    /// <summary>
    /// Computes the loss.
    /// </summary>
    /// <param name="options">The switches; validate them once with <see cref="DistillLossOptions.Validate"/>.</param>
    /// <param name="studentFeature">CLS feature [B, D], or all tokens [B, 1 + N, D] with PatchTokenAlign.</param>
    /// <param name="teacherFeature">The teacher's, same shape.</param>
    /// <param name="studentAttention">CLS attention rows [B, h_s, 1 + N_s] per block; the last one is used
    /// unless AllBlocks, which pairs block i with block i (lists must then be equally long).</param>
    /// <param name="teacherAttention">The teacher's rows [B, h_t, 1 + N_t] per block.</param>
    /// <param name="studentValueNorms">Value-vector L2 norms [B, h_s, 1 + N_s] per block, needed with WeightByValue.</param>
    /// <param name="teacherValueNorms">The teacher's, needed with WeightByValue.</param>
    public static LossParts Compute(DistillLossOptions options,
        Tensor studentFeature, Tensor teacherFeature,
        IReadOnlyList<Tensor> studentAttention, IReadOnlyList<Tensor> teacherAttention,
        IReadOnlyList<Tensor>? studentValueNorms = null, IReadOnlyList<Tensor>? teacherValueNorms = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        CheckFeatures(options, studentFeature, teacherFeature);

        using var scope = NewDisposeScope();
        var fT = teacherFeature.detach();
        Tensor cls = options.WeightCls > 0
            ? AttentionDivergence.Mse(studentFeature, fT).Times(options.WeightCls)
            : zeros(Array.Empty<long>(), studentFeature.dtype, studentFeature.device);

        Tensor attn;
        if (options.UsesAttention)
        {
            var pairs = BlockPairs(options, studentAttention, teacherAttention, studentValueNorms, teacherValueNorms);
            Tensor? sum = null;
            foreach (var (s, t, vs, vt) in pairs)
            {
                var block = BlockLoss(options, s, t, vs, vt);
                sum = sum is null ? block : sum.Plus(block);
            }
            attn = sum!.Times(options.WeightAttn);
        }
        else
        {
            // lambda = 0: the feature-only baseline; no attention math at all.
            attn = zeros(Array.Empty<long>(), studentFeature.dtype, studentFeature.device);
        }

        var total = cls.Plus(attn);
        return new LossParts(total.MoveToOuterDisposeScope(), cls.MoveToOuterDisposeScope(), attn.MoveToOuterDisposeScope());
    }

    /// <summary>
    /// Unweighted attention divergence of one block: D(A_t || A_s) after value weighting, interpolation,
    /// aggregation, clamp and renormalization. Also the "KL distance" of the attention figures.
    /// </summary>
    public static Tensor BlockLoss(DistillLossOptions options, Tensor studentAttention, Tensor teacherAttention,
        Tensor? studentValueNorms = null, Tensor? teacherValueNorms = null)
    {
        using var scope = NewDisposeScope();
        var (s, t) = PrepareMaps(options, studentAttention, teacherAttention, studentValueNorms, teacherValueNorms);
        var d = options.AttnLoss == AttentionLossKind.KL
            ? AttentionDivergence.KlBatchMean(t, s)
            : AttentionDivergence.Mse(s, t);
        return d.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Steps 3-5 (after the optional value weighting): the student and teacher maps as the divergence
    /// sees them, [B, 1 + N_s] when aggregated, else [B, h, 1 + N_s]. The teacher map is detached.
    /// </summary>
    public static (Tensor Student, Tensor Teacher) PrepareMaps(DistillLossOptions options,
        Tensor studentAttention, Tensor teacherAttention, Tensor? studentValueNorms = null, Tensor? teacherValueNorms = null)
    {
        if (studentAttention.dim() != 3 || teacherAttention.dim() != 3)
            throw new ArgumentException($"attention rows must be [B, heads, 1 + N]; got student [{string.Join(", ", studentAttention.shape)}], teacher [{string.Join(", ", teacherAttention.shape)}].");
        if (studentAttention.shape[0] != teacherAttention.shape[0])
            throw new ArgumentException($"student batch {studentAttention.shape[0]} differs from teacher batch {teacherAttention.shape[0]}.");

        using var scope = NewDisposeScope();
        var s = studentAttention;
        var t = teacherAttention.detach();
        if (options.WeightByValue)
        {
            if (studentValueNorms is null || teacherValueNorms is null)
                throw new ArgumentException("weight-by-value needs the value norms of both student and teacher.");
            s = ValueWeighting.Apply(s, studentValueNorms);
            t = ValueWeighting.Apply(t, teacherValueNorms.detach());
        }

        int nS = AttentionInterpolation.GridSide(s.shape[2]);
        int nT = AttentionInterpolation.GridSide(t.shape[2]);
        if (nS != nT)
        {
            if (!options.Interpolate)
                throw new ArgumentException($"student grid {nS}x{nS} differs from teacher grid {nT}x{nT} and interpolation is off: add --interpolate.");
            t = AttentionInterpolation.ToGrid(t, nS, options.ClampInterpolation);   // (B, h_t, 1 + N_s)
        }

        if (options.Aggregation == AttentionAggregation.None && s.shape[1] != t.shape[1])
            throw new ArgumentException($"student heads {s.shape[1]} differ from teacher heads {t.shape[1]} and aggregation is none: set --aggregation product (or max, mean, min).");
        s = HeadAggregation.Aggregate(s, options.Aggregation, options.AttnTemperature);   // (B, 1 + N_s) or (B, h, 1 + N_s)
        t = HeadAggregation.Aggregate(t, options.Aggregation, options.AttnTemperature);

        s = AttentionNormalization.ClampAndRenormalize(s, options.ClampMin, options.ClampMax);
        t = AttentionNormalization.ClampAndRenormalize(t, options.ClampMin, options.ClampMax);
        return (s.MoveToOuterDisposeScope(), t.MoveToOuterDisposeScope());
    }

    static void CheckFeatures(DistillLossOptions options, Tensor studentFeature, Tensor teacherFeature)
    {
        int rank = options.PatchTokenAlign ? 3 : 2;
        string what = options.PatchTokenAlign ? "[B, 1 + N, D] (patch-token align)" : "[B, D] (CLS)";
        if (studentFeature.dim() != rank || teacherFeature.dim() != rank)
            throw new ArgumentException($"features must be {what}; got student [{string.Join(", ", studentFeature.shape)}], teacher [{string.Join(", ", teacherFeature.shape)}].");
        if (!studentFeature.shape.SequenceEqual(teacherFeature.shape))
            throw new ArgumentException($"student feature [{string.Join(", ", studentFeature.shape)}] and teacher feature [{string.Join(", ", teacherFeature.shape)}] differ: a projector to the teacher's width is needed (and equal grids for patch-token align).");
    }

    static List<(Tensor S, Tensor T, Tensor? VS, Tensor? VT)> BlockPairs(DistillLossOptions options,
        IReadOnlyList<Tensor> studentAttention, IReadOnlyList<Tensor> teacherAttention,
        IReadOnlyList<Tensor>? studentValueNorms, IReadOnlyList<Tensor>? teacherValueNorms)
    {
        ArgumentNullException.ThrowIfNull(studentAttention);
        ArgumentNullException.ThrowIfNull(teacherAttention);
        if (studentAttention.Count == 0 || teacherAttention.Count == 0)
            throw new ArgumentException("the attention term needs at least one block of student and teacher attention.");
        if (options.WeightByValue)
        {
            if (studentValueNorms is null || teacherValueNorms is null)
                throw new ArgumentException("weight-by-value needs the value norms of both student and teacher, one per attention block.");
            if (studentValueNorms.Count != studentAttention.Count || teacherValueNorms.Count != teacherAttention.Count)
                throw new ArgumentException("weight-by-value needs exactly one value-norm tensor per attention block.");
        }

        var pairs = new List<(Tensor, Tensor, Tensor?, Tensor?)>();
        if (!options.AllBlocks)
        {
            int ls = studentAttention.Count - 1, lt = teacherAttention.Count - 1;
            pairs.Add((studentAttention[ls], teacherAttention[lt],
                options.WeightByValue ? studentValueNorms![ls] : null, options.WeightByValue ? teacherValueNorms![lt] : null));
            return pairs;
        }
        if (studentAttention.Count != teacherAttention.Count)
            throw new ArgumentException($"attention over all blocks pairs block i with block i, but got {studentAttention.Count} student and {teacherAttention.Count} teacher blocks.");
        for (int i = 0; i < studentAttention.Count; i++)
            pairs.Add((studentAttention[i], teacherAttention[i],
                options.WeightByValue ? studentValueNorms![i] : null, options.WeightByValue ? teacherValueNorms![i] : null));
        return pairs;
    }
}
