using AttnDistill.Models;

namespace AttnDistill.Visualization;

/// <summary>A loaded backbone with the name its row carries in the pictures (e.g. "AttnDistill lambda 0.1").</summary>
public sealed record NamedModel(string Name, VisionTransformer Model);
