using AttnDistill.Models;
using static TorchSharp.torch;

namespace AttnDistill.Pretraining;

/// <summary>
/// MAE's initialize_weights: xavier-uniform for every Linear (JAX ViT) with zero bias, the patch
/// projection xavier-uniform on its (D, C*p*p) view (initialized like a Linear), CLS and mask tokens
/// normal(0.02), LayerNorm 1/0. The position tables stay the fixed sin-cos ones.
/// </summary>
public static class MaeWeightInit
{
    public const double TokenStd = 0.02;

    public static void Init(MaskedAutoencoder mae)
    {
        using var _ = no_grad();
        var proj = mae.Encoder.PatchEmbedding.Proj.weight!;
        using (var flat = proj.view(proj.shape[0], -1)) nn.init.xavier_uniform_(flat);
        nn.init.normal_(mae.Encoder.ClsToken, std: TokenStd);
        nn.init.normal_(mae.MaskToken, std: TokenStd);
        WeightInit.InitLinearAndNorm(mae, w => nn.init.xavier_uniform_(w));
    }
}
