using static TorchSharp.torch;

namespace AttnDistill.Evaluation;

/// <summary>timm's SoftTargetCrossEntropy, the loss of mixed (soft) targets: mean over the batch of -sum(target * log_softmax(logits)).</summary>
public static class SoftTargetCrossEntropy
{
    /// <param name="logits">[B, classes].</param>
    /// <param name="targets">[B, classes], rows summing to 1.</param>
    public static Tensor Loss(Tensor logits, Tensor targets) =>
        (-targets.to(logits.dtype) * nn.functional.log_softmax(logits, -1)).sum(-1).mean();
}
