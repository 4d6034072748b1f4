using AttnDistill.Models;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace AttnDistill.Distillation;

/// <summary>What the student hands to the loss.</summary>
/// <param name="Feature">CLS feature (B, D_teacher), or all tokens (B, 1 + N, D_teacher) for patch-token alignment.</param>
/// <param name="Attention">Requested blocks' CLS rows and value norms.</param>
public sealed record StudentOutput(Tensor Feature, IReadOnlyList<BlockAttention> Attention);

/// <summary>
/// Student = ViT backbone + optional projector P on all last-block tokens + LayerNorm of the
/// teacher's width (docs/METHOD.md, section 2.3, as the authors' student). Without P, the feature is the
/// backbone's own normalized output. The backbone alone is what gets exported and evaluated.
/// </summary>
public sealed class DistillStudent : nn.Module<Tensor, Tensor>
{
#pragma warning disable IDE1006
    private readonly VisionTransformer backbone;
    private readonly Projector? proj;
    private readonly LayerNorm? proj_norm;
#pragma warning restore IDE1006

    public DistillStudent(VitConfig backboneConfig, int teacherDim, int projectorLayers) : base(nameof(DistillStudent))
    {
        backbone = new VisionTransformer(backboneConfig);
        if (projectorLayers > 0)
        {
            proj = new Projector(backboneConfig.EmbedDim, teacherDim, projectorLayers, backboneConfig.LayerNormEps);
            proj_norm = nn.LayerNorm(teacherDim, eps: backboneConfig.LayerNormEps);
            WeightInit.InitLinearAndNorm(proj);
        }
        else if (backboneConfig.EmbedDim != teacherDim)
        {
            throw new ArgumentException(
                $"without a projector the student width ({backboneConfig.EmbedDim}) must equal the teacher's ({teacherDim}): set --proj-layers to 1 or more.");
        }
        RegisterComponents();
    }

    public VisionTransformer Backbone => backbone;
    public int ProjectorLayers => proj?.Layers ?? 0;
    public int FeatureDim => proj is null ? backbone.Config.EmbedDim : (int)proj_norm!.weight!.shape[0];

    /// <summary>The distillation feature (CLS after P and its LayerNorm): (B, C, H, W) -> (B, D_teacher).</summary>
    public override Tensor forward(Tensor x)
    {
        var o = Forward(x, AttentionRequest.None, false, allTokens: false);
        return o.Feature;
    }

    public StudentOutput Forward(Tensor x, AttentionRequest request, bool valueNorms, bool allTokens)
    {
        var f = backbone.ForwardFeatures(x, request, valueNorms);
        // P and both LayerNorms act token by token: for the CLS feature only the CLS token goes through them.
        using var hidden = allTokens ? f.Hidden.alias() : f.Hidden.select(1, 0);   // (B, 1 + N, d) or (B, d)
        f.Hidden.Dispose();
        if (proj is null) return new StudentOutput(Autocast.LayerNorm(backbone.Norm, hidden), f.Attention);
        using var projected = proj.forward(hidden);                                 // (B, [1 + N,] D)
        return new StudentOutput(Autocast.LayerNorm(proj_norm!, projected), f.Attention);
    }

    /// <summary>
    /// The feature handed to k-NN / linear probing ("evaluation P layer", Table 10(d)): k = 0 is the
    /// backbone's normalized CLS (before P; the best choice), 1..L the k-th projector Linear's
    /// output on the CLS token, and L + 1 the projector's final LayerNorm output.
    /// </summary>
    public Tensor EvaluationFeature(Tensor x, int layer)
    {
        if (layer == 0) return backbone.forward(x);
        if (proj is null || layer > proj.Layers + 1)
            throw new ArgumentException($"evaluation layer {layer} is past the projector's {ProjectorLayers} layer(s): use 0..{ProjectorLayers + (proj is null ? 0 : 1)}.");
        var f = backbone.ForwardFeatures(x);
        using var cls = f.Hidden.select(1, 0);
        f.Hidden.Dispose();
        if (layer <= proj.Layers) return proj.ForwardUpTo(cls, layer);
        using var p = proj.forward(cls);
        return Autocast.LayerNorm(proj_norm!, p);
    }
}
