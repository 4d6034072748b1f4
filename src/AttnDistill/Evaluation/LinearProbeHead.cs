using AttnDistill.Tensors;
using AttnDistill.Models;
using TorchSharp;
using TorchSharp.Modules;
using TorchSharp.Utils;
using static TorchSharp.torch;

namespace AttnDistill.Evaluation;

/// <summary>
/// MAE's linear-probe head (main_linprobe.py): BatchNorm1d without affine (eps 1e-6) then one
/// Linear layer, weight trunc-normal(std 0.01), bias 0. Named "0" and "1", the keys of MAE's
/// nn.Sequential, so the state dict is MAE's "head.*" without the prefix. The names are given by
/// [ComponentName] and registered once: register_module plus a parent's RegisterComponents (which
/// also walks children's fields) stored every tensor twice, under 0./1. and _bn./_linear.
/// </summary>
public sealed class LinearProbeHead : nn.Module<Tensor, Tensor>
{
    [ComponentName(Name = "0")]
    private readonly BatchNorm1d _bn;
    [ComponentName(Name = "1")]
    private readonly Linear _linear;

    public LinearProbeHead(long inFeatures, long numClasses) : base(nameof(LinearProbeHead))
    {
        _bn = nn.BatchNorm1d(inFeatures, eps: 1e-6, affine: false);
        _linear = nn.Linear(inFeatures, numClasses);
        RegisterComponents();
        using var noGrad = torch.no_grad();
        WeightInit.TruncNormal_(_linear.weight!, std: 0.01);
        _linear.bias!.zero_();
    }

    public Linear Linear => _linear;

    /// <summary>[B, D] features -> [B, C] logits.</summary>
    public override Tensor forward(Tensor features)
    {
        using var normed = _bn.ForwardKept(features);
        return _linear.forward(normed);
    }
}
