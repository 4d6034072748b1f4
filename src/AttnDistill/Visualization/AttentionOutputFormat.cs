namespace AttnDistill.Visualization;

/// <summary>What <see cref="AttentionPanels"/> writes per image: the PNG panel, the raw maps as .npy files, or both.</summary>
public enum AttentionOutputFormat
{
    Png,
    Npy,
    Both,
}
