using TorchSharp.Modules;
using static TorchSharp.torch;

namespace AttnDistill.Pretraining.Dino;

/// <summary>
/// <c>nn.utils.weight_norm(nn.Linear(in, out, bias=False))</c>: weight = g x v / ||v||, the norm
/// taken per output row (dim 0), parameters named weight_g (out, 1) and weight_v (out, in) as
/// PyTorch's, so DINO's state dicts load 1:1.
/// </summary>
public sealed class WeightNormLinear : nn.Module<Tensor, Tensor>
{
#pragma warning disable IDE1006
    private readonly Parameter weight_g;
    private readonly Parameter weight_v;
#pragma warning restore IDE1006

    public WeightNormLinear(int inFeatures, int outFeatures) : base(nameof(WeightNormLinear))
    {
        // v starts as nn.Linear's default init (kaiming_uniform a=sqrt(5): U(-1/sqrt(in), 1/sqrt(in)));
        // DINO then fills g with 1, so the initial weight is the row-normalized v.
        using var linear = nn.Linear(inFeatures, outFeatures, hasBias: false);
        weight_v = new Parameter(linear.weight!.detach().clone());
        weight_g = new Parameter(ones(outFeatures, 1));
        RegisterComponents();
    }

    public Parameter WeightG => weight_g;
    public Parameter WeightV => weight_v;

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        // torch._weight_norm(v, g, 0): v x (g / ||v||_row)
        var norm = weight_v.norm(1, keepdim: true);
        var w = weight_v * (weight_g / norm);
        return nn.functional.linear(x, w).MoveToOuterDisposeScope();
    }
}
