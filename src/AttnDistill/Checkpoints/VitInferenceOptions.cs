using AttnDistill.Models;

namespace AttnDistill.Checkpoints;

/// <summary>What a checkpoint's shapes cannot tell, given by the user (a preset or flags).</summary>
public sealed record VitInferenceOptions
{
    /// <summary>Attention heads (a --heads flag); wins over the preset and the width table.</summary>
    public int? NumHeads { get; init; }

    /// <summary>
    /// A named configuration the checkpoint is meant to be: heads, LayerNorm eps and drop rates come
    /// from it; width, depth, patch, channels and MLP width must agree with the tensors.
    /// </summary>
    public VitConfig? Preset { get; init; }

    /// <summary>Forces the position-embedding kind instead of recognising the sin-cos table by value.</summary>
    public PosEmbedKind? PosEmbed { get; init; }

    /// <summary>Resamples pos_embed by this rule instead of the one recognised from the file (<see cref="PosEmbedSource.Of"/>).</summary>
    public PosEmbedRule? Resampling { get; init; }
}
