using AttnDistill.Models;

namespace AttnDistill.Pretraining;

/// <summary>
/// Everything needed to rebuild a masked autoencoder (docs/METHOD.md, section 4.1): the encoder's
/// <see cref="VitConfig"/> (sin-cos position embedding, as MAE) plus the light decoder and the
/// masking/loss settings. Names follow models_mae.py's constructor arguments.
/// </summary>
public sealed record MaeConfig
{
    public VitConfig Encoder { get; init; } = new() { PosEmbed = PosEmbedKind.SinCos };
    public int DecoderEmbedDim { get; init; } = 512;
    public int DecoderDepth { get; init; } = 8;
    public int DecoderNumHeads { get; init; } = 16;
    /// <summary>Fraction of patches removed per image; the encoder sees int(L x (1 - ratio)) of them.</summary>
    public double MaskRatio { get; init; } = 0.75;
    /// <summary>Targets are per-patch normalized pixels (MAE's --norm_pix_loss, its recommended setting).</summary>
    public bool NormPixLoss { get; init; } = true;

    /// <summary>
    /// A config for an encoder with a decoder sized to it: MAE's 512/8/16 for base and wider,
    /// 256/4/8 for small-width encoders (384), 128/2/4 below (tiny, CPU-size runs). The encoder
    /// is switched to the fixed sin-cos position embedding MAE uses.
    /// </summary>
    public static MaeConfig For(VitConfig encoder)
    {
        var (dim, depth, heads) = encoder.EmbedDim switch
        {
            >= 768 => (512, 8, 16),
            >= 384 => (256, 4, 8),
            _ => (128, 2, 4),
        };
        return new MaeConfig
        {
            Encoder = encoder with { PosEmbed = PosEmbedKind.SinCos },
            DecoderEmbedDim = dim,
            DecoderDepth = depth,
            DecoderNumHeads = heads,
        };
    }

    /// <summary>The decoder blocks' shape, as a ViT config (same MLP ratio, qkv bias and norm eps as the encoder).</summary>
    public VitConfig DecoderBlockConfig => Encoder with
    {
        EmbedDim = DecoderEmbedDim,
        Depth = DecoderDepth,
        NumHeads = DecoderNumHeads,
        DropRate = 0,
        AttnDropRate = 0,
        DropPathRate = 0,
    };

    /// <summary>Output width of decoder_pred: the pixels of one patch, p x p x C.</summary>
    public int PatchPixels => Encoder.PatchSize * Encoder.PatchSize * Encoder.InChans;

    /// <summary>Visible patches per image: int(L x (1 - mask ratio)), as MAE's random_masking.</summary>
    public int LenKeep => KeepCount(Encoder.NumPatches, MaskRatio);

    internal static int KeepCount(long numPatches, double maskRatio) => (int)(numPatches * (1 - maskRatio));

    /// <summary>Throws with a message naming the setting and the fix when the shape is impossible.</summary>
    public MaeConfig Validate()
    {
        Encoder.Validate();
        if (Encoder.PosEmbed != PosEmbedKind.SinCos)
            throw new ArgumentException("an MAE encoder uses the fixed sin-cos position embedding: set PosEmbed = SinCos (MaeConfig.For does).");
        if (DecoderEmbedDim <= 0 || DecoderDepth <= 0 || DecoderNumHeads <= 0)
            throw new ArgumentException($"decoder width, depth and heads must be positive (got {DecoderEmbedDim}, {DecoderDepth}, {DecoderNumHeads}).");
        if (DecoderEmbedDim % DecoderNumHeads != 0)
            throw new ArgumentException($"decoder heads {DecoderNumHeads} do not divide the decoder width {DecoderEmbedDim}: use a head count that divides {DecoderEmbedDim}.");
        if (DecoderEmbedDim % 4 != 0)
            throw new ArgumentException($"the decoder's 2-D sin-cos position embedding needs a width divisible by 4, got {DecoderEmbedDim}.");
        if (MaskRatio is < 0 or >= 1 || double.IsNaN(MaskRatio))
            throw new ArgumentException($"mask ratio must be in [0, 1), got {MaskRatio}: MAE uses 0.75.");
        if (LenKeep < 1)
            throw new ArgumentException($"mask ratio {MaskRatio} leaves no visible patch out of {Encoder.NumPatches}: lower the mask ratio or use a smaller patch.");
        return this;
    }
}
