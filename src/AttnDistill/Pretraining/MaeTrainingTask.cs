using AttnDistill.Data;
using AttnDistill.Training;
using static TorchSharp.torch;

namespace AttnDistill.Pretraining;

/// <summary>
/// MAE pre-training for the shared <see cref="Trainer"/>: the loss of a batch is
/// <see cref="MaskedAutoencoder.ForwardLoss"/> on fresh random masks (torch generator, so a run's
/// seed fixes them). No projector, no teacher; weight decay groups are the trainer's default
/// (timm's add_weight_decay, as MAE's main_pretrain), and the two sin-cos tables are frozen.
/// </summary>
public sealed class MaeTrainingTask : ITrainingTask
{
    public const string TaskKind = "pretrain-mae";

    public MaeTrainingTask(MaskedAutoencoder model) => Mae = model;

    public MaskedAutoencoder Mae { get; }

    public nn.Module Model => Mae;

    public string Kind => TaskKind;

    public StepLoss Loss(DataBatch batch)
    {
        var output = Mae.Forward(batch.Images);
        var pred = output.Pred;
        var images = batch.Images;
        return new StepLoss(output.Loss, new Dictionary<string, Tensor> { ["mae"] = output.Loss },
            () => $"images min {images.min().item<float>():g4} max {images.max().item<float>():g4}; pred min {pred.min().item<float>():g4} max {pred.max().item<float>():g4}.");
    }
}
