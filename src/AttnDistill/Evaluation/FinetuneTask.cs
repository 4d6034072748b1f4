using AttnDistill.Data;
using AttnDistill.Training;
using static TorchSharp.torch;

namespace AttnDistill.Evaluation;

/// <summary>
/// Full fine-tuning for the shared <see cref="Trainer"/>: cross-entropy (with label smoothing) of
/// the whole ViT + head, optimizer groups with layer-wise lr decay (BEiT/MAE) when it is below 1.
/// </summary>
public sealed class FinetuneTask : ITrainingTask
{
    private readonly FinetuneModel _model;
    private readonly double _layerDecay;
    private readonly double _labelSmoothing;

    public FinetuneTask(FinetuneModel model, double layerDecay, double labelSmoothing)
    {
        if (!(layerDecay > 0 && layerDecay <= 1)) throw new ArgumentException($"--layer-decay must be in (0, 1] (1 = off; MAE uses 0.65-0.75), got {layerDecay}.");
        if (!(labelSmoothing >= 0 && labelSmoothing < 1)) throw new ArgumentException($"--smoothing must be in [0, 1), got {labelSmoothing}.");
        _model = model;
        _layerDecay = layerDecay;
        _labelSmoothing = labelSmoothing;
    }

    public nn.Module Model => _model;
    public string Kind => "finetune";

    public IReadOnlyList<ParameterGroup> ParameterGroups(double weightDecay) =>
        LayerDecay.ParameterGroups(_model, _model.Backbone.Config.Depth, weightDecay, _layerDecay);

    public StepLoss Loss(DataBatch batch)
    {
        var logits = _model.forward(batch.Images);
        var loss = nn.functional.cross_entropy(logits, batch.Labels, label_smoothing: _labelSmoothing);
        return new StepLoss(loss, new Dictionary<string, Tensor> { ["ce"] = loss });
    }
}
