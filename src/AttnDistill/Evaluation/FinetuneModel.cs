using AttnDistill.Models;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace AttnDistill.Evaluation;

/// <summary>
/// A ViT with a linear classifier, as the fine-tuned models of MAE and timm: with
/// <c>globalPool</c> (MAE main_finetune's default, --global-pool) the head reads the mean of the
/// patch tokens through its own LayerNorm <c>fc_norm</c> and the backbone's final <c>norm</c> is
/// unused (MAE deletes it); without it (--cls-token, DINO's and DeiT's way) the head reads the
/// normalized CLS token. The head starts at trunc-normal(std 2e-5), bias 0, as MAE's
/// main_finetune. <see cref="ExportStateDict"/> gives timm's flat names (blocks.*, fc_norm.*, head.*).
/// </summary>
public sealed class FinetuneModel : nn.Module<Tensor, Tensor>
{
#pragma warning disable IDE1006
    private readonly VisionTransformer backbone;
    private readonly Linear head;
    private readonly LayerNorm? fc_norm;
#pragma warning restore IDE1006

    public FinetuneModel(VisionTransformer backbone, int numClasses, bool globalPool = false) : base(nameof(FinetuneModel))
    {
        if (numClasses < 2) throw new ArgumentException($"a classifier needs at least 2 classes, got {numClasses}.");
        this.backbone = backbone;
        GlobalPool = globalPool;
        if (globalPool)
        {
            fc_norm = nn.LayerNorm(backbone.Config.EmbedDim, eps: backbone.Config.LayerNormEps);
            foreach (var p in backbone.Norm.parameters()) p.requires_grad = false;
        }
        head = nn.Linear(backbone.Config.EmbedDim, numClasses);
        using (no_grad())
        {
            WeightInit.TruncNormal_(head.weight!, std: 2e-5);
            head.bias!.zero_();
        }
        RegisterComponents();
    }

    public VisionTransformer Backbone => backbone;
    public Linear Head => head;
    /// <summary>True: mean of patch tokens + fc_norm; false: the normalized CLS token.</summary>
    public bool GlobalPool { get; }

    public override Tensor forward(Tensor images)
    {
        if (fc_norm is null)
        {
            using var features = backbone.forward(images);
            return head.forward(features);
        }
        using var scope = NewDisposeScope();
        var hidden = backbone.ForwardFeatures(images).Hidden;                      // (B, 1 + N, D), before the final norm
        var pooled = hidden.narrow(1, 1, hidden.shape[1] - 1).mean(new long[] { 1 }); // (B, D)
        return head.forward(fc_norm.forward(pooled)).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// State dict with timm's names: the backbone's keys unprefixed plus head.* (and fc_norm.*
    /// with global pooling, which has no final norm.*, as MAE's fine-tuned checkpoints).
    /// </summary>
    public Dictionary<string, Tensor> ExportStateDict() =>
        state_dict()
            .Select(kv => (Key: kv.Key.StartsWith("backbone.", StringComparison.Ordinal) ? kv.Key["backbone.".Length..] : kv.Key, kv.Value))
            .Where(kv => !(GlobalPool && kv.Key.StartsWith("norm.", StringComparison.Ordinal)))
            .ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal);
}
