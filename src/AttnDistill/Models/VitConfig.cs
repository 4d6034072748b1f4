namespace AttnDistill.Models;

/// <summary>How a ViT encodes token positions (docs/METHOD.md, section 2.1).</summary>
public enum PosEmbedKind
{
    /// <summary>Trained parameter, trunc-normal(0.02) init: DINO, Mugs, iBOT, DeiT.</summary>
    Learnable,
    /// <summary>Fixed 2-D sin-cos table, not trained: MAE.</summary>
    SinCos,
}

/// <summary>
/// Everything needed to rebuild a Vision Transformer. Checkpoints carry it, so a model is rebuilt
/// from the file alone. Names follow timm's constructor arguments.
/// </summary>
public sealed record VitConfig
{
    public int ImageSize { get; init; } = 224;
    public int PatchSize { get; init; } = 16;
    public int InChans { get; init; } = 3;
    public int EmbedDim { get; init; } = 192;
    public int Depth { get; init; } = 12;
    public int NumHeads { get; init; } = 3;
    public double MlpRatio { get; init; } = 4.0;
    public bool QkvBias { get; init; } = true;
    public PosEmbedKind PosEmbed { get; init; } = PosEmbedKind.Learnable;
    public double DropRate { get; init; }
    public double AttnDropRate { get; init; }
    public double DropPathRate { get; init; }
    public double LayerNormEps { get; init; } = 1e-6;

    public int GridSize => ImageSize / PatchSize;
    public int NumPatches => GridSize * GridSize;
    public int HeadDim => EmbedDim / NumHeads;
    public int MlpHiddenDim => (int)(EmbedDim * MlpRatio);

    /// <summary>Throws with a message naming the setting and the fix when the shape is impossible.</summary>
    public VitConfig Validate()
    {
        if (PatchSize <= 0) throw new ArgumentException($"patch size must be positive, got {PatchSize}.");
        if (ImageSize <= 0) throw new ArgumentException($"image size must be positive, got {ImageSize}.");
        if (ImageSize % PatchSize != 0)
            throw new ArgumentException(
                $"patch size {PatchSize} does not divide image size {ImageSize}: pick an image size that is a multiple of {PatchSize} (e.g. {Math.Max(PatchSize, ImageSize / PatchSize * PatchSize)}) or another patch size.");
        if (EmbedDim <= 0) throw new ArgumentException($"the width (embed dim) must be positive, got {EmbedDim}.");
        if (Depth <= 0) throw new ArgumentException($"the depth (number of blocks) must be positive, got {Depth}.");
        if (NumHeads <= 0) throw new ArgumentException($"the number of heads must be positive, got {NumHeads}.");
        if (InChans <= 0) throw new ArgumentException($"input channels must be positive, got {InChans}.");
        if (EmbedDim % NumHeads != 0)
            throw new ArgumentException($"heads {NumHeads} do not divide the width {EmbedDim}: use a head count that divides {EmbedDim}.");
        if (PosEmbed == PosEmbedKind.SinCos && EmbedDim % 4 != 0)
            throw new ArgumentException($"a 2-D sin-cos position embedding needs a width divisible by 4, got {EmbedDim}.");
        if (!(MlpRatio > 0) || MlpHiddenDim <= 0) throw new ArgumentException($"mlp ratio must be positive, got {MlpRatio}.");
        if (!(LayerNormEps > 0)) throw new ArgumentException($"layer norm eps must be positive, got {LayerNormEps}.");
        if (DropRate is < 0 or >= 1 || AttnDropRate is < 0 or >= 1 || DropPathRate is < 0 or >= 1)
            throw new ArgumentException($"dropout and drop-path rates must be in [0, 1), got drop {DropRate}, attention drop {AttnDropRate}, drop path {DropPathRate}.");
        return this;
    }
}
