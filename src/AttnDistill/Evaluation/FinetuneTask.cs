using AttnDistill.Data;
using AttnDistill.Data.Mixing;
using AttnDistill.Training;
using static TorchSharp.torch;

namespace AttnDistill.Evaluation;

/// <summary>
/// Full fine-tuning for the shared <see cref="Trainer"/>, as MAE's engine_finetune: each batch is
/// randomly erased (after normalization) and then mixed (Mixup/CutMix) when those are on, and the
/// loss is timm's soft-target cross-entropy of the mixed targets (label smoothing inside them),
/// else cross-entropy with label smoothing; optimizer groups with layer-wise lr decay (BEiT/MAE).
/// </summary>
public sealed class FinetuneTask : ITrainingTask
{
    private readonly FinetuneModel _model;
    private readonly double _layerDecay;
    private readonly double _labelSmoothing;
    private readonly RandomErasing? _erasing;
    private readonly Mixup? _mixup;
    private readonly ModelEma? _ema;

    public FinetuneTask(FinetuneModel model, double layerDecay, double labelSmoothing, RandomErasing? erasing = null, Mixup? mixup = null, ModelEma? ema = null)
    {
        if (!(layerDecay > 0 && layerDecay <= 1)) throw new ArgumentException($"--layer-decay must be in (0, 1] (1 = off; MAE uses 0.65-0.75), got {layerDecay}.");
        if (!(labelSmoothing >= 0 && labelSmoothing < 1)) throw new ArgumentException($"--smoothing must be in [0, 1), got {labelSmoothing}.");
        _model = model;
        _layerDecay = layerDecay;
        _labelSmoothing = labelSmoothing;
        _erasing = erasing;
        _mixup = mixup;
        _ema = ema;
    }

    /// <summary>The model EMA (--model-ema) follows every optimizer step, as DeiT's train_one_epoch.</summary>
    public void AfterOptimizerStep() => _ema?.Update(_model);

    public Checkpoints.CheckpointSection? SaveState()
    {
        if (_ema is null) return null;
        var section = new Checkpoints.CheckpointSection { Json = System.Text.Json.JsonSerializer.Serialize(new { model_ema_decay = _ema.Decay }) };
        foreach (var (k, v) in _ema.State()) section.Tensors[k] = v;
        return section;
    }

    public void LoadState(Checkpoints.CheckpointSection state)
    {
        if (_ema is null) return;
        _ema.Load(state.Tensors);
    }

    public nn.Module Model => _model;
    public string Kind => "finetune";

    public IReadOnlyList<ParameterGroup> ParameterGroups(double weightDecay) =>
        LayerDecay.ParameterGroups(_model, _model.Backbone.Config.Depth, weightDecay, _layerDecay);

    public StepLoss Loss(DataBatch batch)
    {
        var images = batch.Images;
        // The loader's batch is reused by nothing else, but it belongs to the loader: erase a copy.
        if (_erasing is not null) images = _erasing.Apply(images.clone());
        Tensor loss;
        if (_mixup is not null)
        {
            var (mixed, targets) = _mixup.Apply(images, batch.Labels);
            loss = SoftTargetCrossEntropy.Loss(_model.forward(mixed), targets);
        }
        else loss = nn.functional.cross_entropy(_model.forward(images), batch.Labels, label_smoothing: _labelSmoothing);
        return new StepLoss(loss, new Dictionary<string, Tensor> { ["ce"] = loss });
    }
}
