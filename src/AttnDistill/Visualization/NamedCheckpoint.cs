namespace AttnDistill.Visualization;

/// <summary>A backbone checkpoint (ours, DINO, MAE, timm ...) and the name its row carries; Heads for checkpoints without a stored config whose width is not a named size.</summary>
public sealed record NamedCheckpoint(string Name, string Path, int? Heads = null);
