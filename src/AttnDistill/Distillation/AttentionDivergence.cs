using AttnDistill.Tensors;
using static TorchSharp.torch;

namespace AttnDistill.Distillation;

/// <summary>The divergences of the attention term (docs/METHOD.md, section 1.6).</summary>
public static class AttentionDivergence
{
    /// <summary>
    /// KL(target || input) with PyTorch's reduction='batchmean': sum over all elements of
    /// target * (log target - log input), divided by the batch size (dim 0), not by B * heads.
    /// Written out because TorchSharp's kl_div defaults to log_target = true and has no batchmean.
    /// Both are probability maps (already clamped, so no zeros); target carries no gradient.
    /// </summary>
    public static Tensor KlBatchMean(Tensor target, Tensor input)
    {
        if (!target.shape.SequenceEqual(input.shape))
            throw new ArgumentException($"KL needs equal shapes, got target [{string.Join(", ", target.shape)}] and input [{string.Join(", ", input.shape)}].");
        using var scope = NewDisposeScope();
        var perElement = target * (target.log() - input.log());
        return perElement.sum().DividedBy(input.shape[0]).MoveToOuterDisposeScope();
    }

    /// <summary>Mean squared error over all elements (PyTorch's mse_loss, reduction='mean').</summary>
    public static Tensor Mse(Tensor input, Tensor target)
    {
        if (!target.shape.SequenceEqual(input.shape))
            throw new ArgumentException($"MSE needs equal shapes, got input [{string.Join(", ", input.shape)}] and target [{string.Join(", ", target.shape)}].");
        using var scope = NewDisposeScope();
        return (input - target).Squared().mean().MoveToOuterDisposeScope();
    }
}
