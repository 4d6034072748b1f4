using AttnDistill.Models;
using static TorchSharp.torch;

namespace AttnDistill.Pretraining.Dino;

/// <summary>
/// DINO's utils.MultiCropWrapper: a ViT backbone and a <see cref="DinoHead"/>, state-dict names
/// <c>backbone.*</c> and <c>head.*</c> (DINO's checkpoints add <c>module.</c> in front of the
/// student's). Consecutive crops of the same resolution go through the backbone as one batch;
/// the head then runs once on all CLS features, so the output rows follow the crop order.
/// </summary>
public sealed class MultiCropWrapper : nn.Module<Tensor, Tensor>
{
#pragma warning disable IDE1006
    private readonly VisionTransformer backbone;
    private readonly DinoHead head;
#pragma warning restore IDE1006

    public MultiCropWrapper(VisionTransformer backbone, DinoHead head) : base(nameof(MultiCropWrapper))
    {
        this.backbone = backbone;
        this.head = head;
        RegisterComponents();
    }

    public VisionTransformer Backbone => backbone;
    public DinoHead Head => head;

    /// <summary>One crop batch (B, C, H, W) -> (B, out_dim).</summary>
    public override Tensor forward(Tensor x) => Forward(new[] { x });

    /// <summary>The crops in order, each (B, C, H_i, W_i) -> (crops x B, out_dim), crop-major.</summary>
    public Tensor Forward(IReadOnlyList<Tensor> crops)
    {
        if (crops.Count == 0) throw new ArgumentException("no crop to forward.");
        using var scope = NewDisposeScope();
        var features = new List<Tensor>();
        int start = 0;
        while (start < crops.Count)
        {
            int end = start + 1;
            while (end < crops.Count && crops[end].shape[^1] == crops[start].shape[^1]) end++;
            var group = end - start == 1 ? crops[start] : cat(crops.Skip(start).Take(end - start).ToArray(), 0);
            features.Add(backbone.forward(group));
            start = end;
        }
        var all = features.Count == 1 ? features[0] : cat(features.ToArray(), 0);
        return head.forward(all).MoveToOuterDisposeScope();
    }
}
