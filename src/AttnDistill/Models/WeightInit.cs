using AttnDistill.Tensors;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace AttnDistill.Models;

/// <summary>timm/DINO initialization: trunc-normal(0.02) for Linear weights and learnable tokens,
/// zero biases, LayerNorm weight 1 and bias 0. The patch conv keeps PyTorch's default (as DINO).</summary>
public static class WeightInit
{
    public const double Std = 0.02;

    public static void InitVit(VisionTransformer vit)
    {
        using var _ = no_grad();
        TruncNormal_(vit.ClsToken, std: Std);
        if (vit.Config.PosEmbed == PosEmbedKind.Learnable) TruncNormal_(vit.PosEmbed, std: Std);
        InitLinearAndNorm(vit);
    }

    /// <summary>
    /// Truncated normal fill on [a, b] (absolute bounds, as timm's trunc_normal_), by inverse-CDF
    /// sampling. TorchSharp 0.107's nn.init.trunc_normal_ fills a near-constant tensor, so it is
    /// not used.
    /// </summary>
    public static Tensor TruncNormal_(Tensor t, double mean = 0, double std = 1, double a = -2, double b = 2)
    {
        using var _ = no_grad();
        static double NormCdf(double x) => (1 + Erf(x / Math.Sqrt(2))) / 2;
        double lo = NormCdf((a - mean) / std), hi = NormCdf((b - mean) / std);
        t.uniform_(2 * lo - 1, 2 * hi - 1).erfinv_().TimesInPlace(std * Math.Sqrt(2)).PlusInPlace(mean).ClampToInPlace(a, b);
        return t;
    }

    // .NET has no erf; libtorch's, on one scalar, once per tensor.
    static double Erf(double x)
    {
        using var s = tensor(x, float64);
        using var e = s.erf();
        return e.item<double>();
    }

    /// <summary>
    /// Applies the Linear/LayerNorm rule to every submodule: Linear weights by
    /// <paramref name="linearWeight"/> (default trunc-normal 0.02; MAE passes xavier-uniform),
    /// zero biases, LayerNorm 1/0.
    /// </summary>
    public static void InitLinearAndNorm(nn.Module root, Action<Tensor>? linearWeight = null)
    {
        using var _ = no_grad();
        foreach (var (_, m) in root.named_modules())
        {
            switch (m)
            {
                case Linear lin:
                    if (linearWeight is null) TruncNormal_(lin.weight, std: Std);
                    else linearWeight(lin.weight);
                    if (lin.bias is { } b) nn.init.zeros_(b);
                    break;
                case LayerNorm ln:
                    if (ln.weight is { } w) nn.init.ones_(w);
                    if (ln.bias is { } lb) nn.init.zeros_(lb);
                    break;
            }
        }
    }
}
