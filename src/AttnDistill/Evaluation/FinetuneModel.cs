using AttnDistill.Models;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace AttnDistill.Evaluation;

/// <summary>
/// A ViT with a linear classifier on its normalized CLS token, as timm's/DINO's/MAE's fine-tuned
/// models (global_pool off). The head starts at trunc-normal(std 2e-5), bias 0, as MAE's
/// main_finetune. <see cref="ExportStateDict"/> gives timm's flat names (blocks.*, head.*).
/// </summary>
public sealed class FinetuneModel : nn.Module<Tensor, Tensor>
{
#pragma warning disable IDE1006
    private readonly VisionTransformer backbone;
    private readonly Linear head;
#pragma warning restore IDE1006

    public FinetuneModel(VisionTransformer backbone, int numClasses) : base(nameof(FinetuneModel))
    {
        if (numClasses < 2) throw new ArgumentException($"a classifier needs at least 2 classes, got {numClasses}.");
        this.backbone = backbone;
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

    public override Tensor forward(Tensor images)
    {
        using var features = backbone.forward(images);
        return head.forward(features);
    }

    /// <summary>State dict with timm's names: the backbone's keys unprefixed plus head.weight / head.bias.</summary>
    public Dictionary<string, Tensor> ExportStateDict() =>
        state_dict().ToDictionary(kv => kv.Key.StartsWith("backbone.", StringComparison.Ordinal) ? kv.Key["backbone.".Length..] : kv.Key, kv => kv.Value, StringComparer.Ordinal);
}
