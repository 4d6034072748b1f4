namespace AttnDistill.Data.Mixing;

/// <summary>How Mixup/CutMix parameters are drawn (timm's --mixup-mode): one per batch, per pair of elements (i, B-1-i), or per element.</summary>
public enum MixupMode
{
    Batch,
    Pair,
    Elem,
}
