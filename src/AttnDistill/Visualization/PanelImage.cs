using AttnDistill.Data;

namespace AttnDistill.Visualization;

/// <summary>
/// An image to draw: its name (file name), its group (class name, or "" for loose files) and how to
/// decode it. Decoding is deferred so a gallery of a thousand large images is never all in memory.
/// </summary>
public sealed record PanelImage(string Name, string Group, Func<DecodedImage> Load);
