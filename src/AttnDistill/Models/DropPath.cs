using AttnDistill.Tensors;
using TorchSharp;
using static TorchSharp.torch;

namespace AttnDistill.Models;

/// <summary>
/// Stochastic depth: in training, zero a residual branch for a whole sample with probability p and
/// scale the survivors by 1/(1-p), as timm's DropPath. Identity in eval or when p = 0.
/// </summary>
public sealed class DropPath : nn.Module<Tensor, Tensor>
{
    public double DropProbability { get; }

    public DropPath(double dropProbability) : base(nameof(DropPath)) => DropProbability = dropProbability;

    public override Tensor forward(Tensor x)
    {
        if (DropProbability == 0 || !training) return x.alias();
        double keep = 1 - DropProbability;
        var shape = new long[x.dim()];
        shape[0] = x.shape[0];
        for (int i = 1; i < shape.Length; i++) shape[i] = 1;
        using var keepScalar = keep.ToScalar();    // held across the call (see KeptScalars)
        using var mask = empty(shape, x.dtype, x.device).bernoulli_(keep).div_(keepScalar); // (B, 1, 1)
        return x.mul(mask);
    }
}
