using AttnDistill.Tensors;
using AttnDistill.Models;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace AttnDistill.Pretraining.Dino;

/// <summary>Shape of DINO's projection head (vision_transformer.DINOHead's arguments).</summary>
public sealed record DinoHeadConfig
{
    public int OutDim { get; init; } = 65536;
    public bool UseBn { get; init; }
    /// <summary>Freeze weight_g of the last layer at 1 (DINO's norm_last_layer; it stabilises training).</summary>
    public bool NormLastLayer { get; init; } = true;
    public int NLayers { get; init; } = 3;
    public int HiddenDim { get; init; } = 2048;
    public int BottleneckDim { get; init; } = 256;

    public DinoHeadConfig Validate()
    {
        if (OutDim <= 0) throw new ArgumentException($"--out-dim must be positive, got {OutDim}.");
        if (NLayers < 1) throw new ArgumentException($"the DINO head needs at least one layer, got {NLayers}.");
        if (HiddenDim <= 0 || BottleneckDim <= 0) throw new ArgumentException($"DINO head widths must be positive (hidden {HiddenDim}, bottleneck {BottleneckDim}).");
        return this;
    }
}

/// <summary>
/// DINO's head: an MLP (Linear [BN] GELU ... Linear to the bottleneck), L2 normalisation, then a
/// weight-normalised bias-free last layer to out_dim. Names mirror DINOHead (mlp.0, mlp.2, mlp.4,
/// last_layer.weight_g, last_layer.weight_v); with norm_last_layer, weight_g is frozen at 1.
/// </summary>
public sealed class DinoHead : nn.Module<Tensor, Tensor>
{
#pragma warning disable IDE1006
    private readonly nn.Module<Tensor, Tensor> mlp;
    private readonly WeightNormLinear last_layer;
#pragma warning restore IDE1006

    public DinoHead(int inDim, DinoHeadConfig config) : base(nameof(DinoHead))
    {
        Config = config.Validate();
        if (config.NLayers == 1) mlp = nn.Linear(inDim, config.BottleneckDim);
        else
        {
            var layers = new List<nn.Module<Tensor, Tensor>> { nn.Linear(inDim, config.HiddenDim) };
            if (config.UseBn) layers.Add(nn.BatchNorm1d(config.HiddenDim));
            layers.Add(nn.GELU());
            for (int i = 0; i < config.NLayers - 2; i++)
            {
                layers.Add(nn.Linear(config.HiddenDim, config.HiddenDim));
                if (config.UseBn) layers.Add(nn.BatchNorm1d(config.HiddenDim));
                layers.Add(nn.GELU());
            }
            layers.Add(nn.Linear(config.HiddenDim, config.BottleneckDim));
            mlp = nn.Sequential(layers.ToArray());
        }
        // DINO initialises the MLP (trunc-normal 0.02, zero bias) before creating the last layer,
        // which keeps nn.Linear's default init for v.
        using (no_grad())
            foreach (var m in mlp.modules().Prepend(mlp).OfType<Linear>())
            {
                WeightInit.TruncNormal_(m.weight!, std: WeightInit.Std);
                m.bias?.zero_();
            }
        last_layer = new WeightNormLinear(config.BottleneckDim, config.OutDim);
        if (config.NormLastLayer) last_layer.WeightG.requires_grad = false;
        RegisterComponents();
    }

    public DinoHeadConfig Config { get; }
    public WeightNormLinear LastLayer => last_layer;

    /// <summary>The MLP, layer by layer, so its batch norms take the kept-Scalar forward (Tensors/KeptBatchNorm).</summary>
    private Tensor Mlp(Tensor x)
    {
        if (mlp is not Sequential layers) return mlp.forward(x);
        var h = x;
        foreach (var layer in layers.children())
            h = layer is BatchNorm bn ? bn.ForwardKept(h) : ((nn.Module<Tensor, Tensor>)layer).forward(h);
        return h;
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var h = Mlp(x);
        var n = nn.functional.normalize(h, p: 2, dim: -1);
        return last_layer.forward(n).MoveToOuterDisposeScope();
    }
}
