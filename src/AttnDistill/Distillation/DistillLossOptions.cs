namespace AttnDistill.Distillation;

/// <summary>
/// Every switch of the AttnDistill loss (docs/METHOD.md, section 1, and the supplement's Table 10).
/// Defaults are the paper's best setting. Names in parentheses are the CLI flags the messages of
/// <see cref="Validate"/> point to.
/// </summary>
public sealed record DistillLossOptions
{
    /// <summary>w_cls: weight of the feature MSE (--weight-cls).</summary>
    public double WeightCls { get; init; } = 1.0;

    /// <summary>lambda = w_attn: weight of the attention term (--weight-attn); 0 gives feature-only distillation.</summary>
    public double WeightAttn { get; init; } = 0.1;

    /// <summary>T: temperature of the head aggregation softmax (--attn-T).</summary>
    public double AttnTemperature { get; init; } = 10.0;

    /// <summary>Head aggregation (--aggregation); <see cref="AttentionAggregation.None"/> compares head by head.</summary>
    public AttentionAggregation Aggregation { get; init; } = AttentionAggregation.Product;

    /// <summary>Resample the teacher's patch attention to the student grid when they differ (--interpolate).</summary>
    public bool Interpolate { get; init; } = true;

    /// <summary>
    /// Clamp the bicubic result at 0 before the CLS-mass rescaling. Bicubic overshoot can make
    /// patch entries negative; the authors' code then takes log() of them in the aggregation and the
    /// whole row becomes NaN (the batch is skipped). With the clamp the entry is 0 instead.
    /// false = the authors' interpolation exactly.
    /// </summary>
    public bool ClampInterpolation { get; init; } = true;

    /// <summary>KL (the method) or MSE (ablation) for the attention term (--attn-loss).</summary>
    public AttentionLossKind AttnLoss { get; init; } = AttentionLossKind.KL;

    /// <summary>Attention term over every block (sum of per-block losses) instead of the last one (--attn-all-blocks).</summary>
    public bool AllBlocks { get; init; }

    /// <summary>Multiply attention by the value-vector L2 norms, then L1-renormalize (after ATS) (--weight-by-value).</summary>
    public bool WeightByValue { get; init; }

    /// <summary>Feature MSE over all output tokens instead of the CLS token only (--patch-token-align).</summary>
    public bool PatchTokenAlign { get; init; }

    /// <summary>Lower clamp of the prepared maps (step 5).</summary>
    public double ClampMin { get; init; } = 1e-5;

    /// <summary>Upper clamp of the prepared maps (step 5).</summary>
    public double ClampMax { get; init; } = 0.996;

    /// <summary>True when the attention term is computed at all (lambda &gt; 0).</summary>
    public bool UsesAttention => WeightAttn > 0;

    /// <summary>
    /// Refuses settings that cannot work for this student/teacher pair, with a one-line message
    /// naming the setting and the fix. Grids are patches per side; dims are the backbone widths;
    /// depths are checked only when given (they matter for <see cref="AllBlocks"/>).
    /// </summary>
    public DistillLossOptions Validate(int studentHeads, int teacherHeads, int studentGrid, int teacherGrid,
        int studentDim, int teacherDim, bool hasProjector, int? studentDepth = null, int? teacherDepth = null)
    {
        if (!double.IsFinite(WeightCls) || WeightCls < 0)
            throw new ArgumentException($"weight-cls (w_cls) must be a finite number >= 0, got {WeightCls}: pass e.g. --weight-cls 1.0.");
        if (!double.IsFinite(WeightAttn) || WeightAttn < 0)
            throw new ArgumentException($"weight-attn (lambda) must be a finite number >= 0, got {WeightAttn}: pass e.g. --weight-attn 0.1 (0 = feature distillation only).");
        if (!double.IsFinite(AttnTemperature) || AttnTemperature <= 0)
            throw new ArgumentException($"attn-T (T) must be > 0, got {AttnTemperature}: pass e.g. --attn-T 10.");
        if (!(ClampMin > 0 && ClampMin < ClampMax && ClampMax <= 1))
            throw new ArgumentException($"attention clamp range [{ClampMin}, {ClampMax}] must satisfy 0 < min < max <= 1: use the defaults [1e-5, 0.996].");
        if (WeightCls == 0 && WeightAttn == 0)
            throw new ArgumentException("weight-cls and weight-attn are both 0, so the loss is always 0: set --weight-cls 1.0 (and --weight-attn 0.1).");
        if (studentHeads <= 0 || teacherHeads <= 0 || studentGrid <= 0 || teacherGrid <= 0 || studentDim <= 0 || teacherDim <= 0)
            throw new ArgumentException("student and teacher heads, grids and widths must be positive.");

        if (studentDim != teacherDim && !hasProjector)
            throw new ArgumentException($"student width {studentDim} differs from teacher width {teacherDim} and there is no projector: set --proj-layers 4 (or 1, 2, 8).");
        if (PatchTokenAlign && studentGrid != teacherGrid)
            throw new ArgumentException($"patch-token-align needs the same token count, but the student grid is {studentGrid}x{studentGrid} and the teacher's {teacherGrid}x{teacherGrid}: drop --patch-token-align or use the teacher's patch size.");

        if (UsesAttention)
        {
            if (studentHeads != teacherHeads && Aggregation == AttentionAggregation.None)
                throw new ArgumentException($"student heads {studentHeads} differ from teacher heads {teacherHeads} and aggregation is none: set --aggregation product (or max, mean, min).");
            if (studentGrid != teacherGrid && !Interpolate)
                throw new ArgumentException($"student grid {studentGrid}x{studentGrid} differs from teacher grid {teacherGrid}x{teacherGrid} and interpolation is off: add --interpolate.");
            if (AllBlocks && studentDepth is int sd && teacherDepth is int td && sd != td)
                throw new ArgumentException($"attention over all blocks pairs block i with block i, but the student has {sd} blocks and the teacher {td}: drop --attn-all-blocks (last block only).");
        }
        return this;
    }
}
