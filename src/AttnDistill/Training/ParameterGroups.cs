using TorchSharp.Modules;
using static TorchSharp.torch;

namespace AttnDistill.Training;

/// <summary>A set of parameters sharing weight decay and a learning-rate multiplier.</summary>
public sealed record ParameterGroup(string Name, IReadOnlyList<(string Name, Parameter Param)> Parameters, double WeightDecay, double LrScale = 1.0);

/// <summary>How parameters are split for the optimizer.</summary>
public static class ParameterGroups
{
    /// <summary>
    /// timm's add_weight_decay: biases and every 1-D tensor (norm weights) get no decay; everything
    /// else (matrices, conv kernels, cls_token, learnable pos_embed) gets <paramref name="weightDecay"/>.
    /// Frozen parameters are left out.
    /// </summary>
    public static IReadOnlyList<ParameterGroup> WeightDecaySplit(nn.Module model, double weightDecay)
    {
        var decay = new List<(string, Parameter)>();
        var noDecay = new List<(string, Parameter)>();
        foreach (var (name, p) in model.named_parameters())
        {
            if (!p.requires_grad) continue;
            if (p.dim() <= 1 || name.EndsWith(".bias", StringComparison.Ordinal)) noDecay.Add((name, p));
            else decay.Add((name, p));
        }
        return new[] { new ParameterGroup("decay", decay, weightDecay), new ParameterGroup("no_decay", noDecay, 0.0) }
            .Where(g => g.Parameters.Count > 0).ToArray();
    }
}
