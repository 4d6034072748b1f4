using static TorchSharp.torch;

namespace AttnDistill.Visualization;

/// <summary>
/// A colour map as a 256-entry lookup table, sampled from ScottPlot's colormaps (Turbo, Jet,
/// Viridis, Inferno, ...), so heat maps are coloured by one gather instead of per-pixel C# code.
/// </summary>
public static class HeatmapColors
{
    public const string DefaultName = "Turbo";

    /// <summary>Names accepted by <see cref="Lookup"/> (ScottPlot's colormap names).</summary>
    public static IReadOnlyList<string> Names { get; } =
        ScottPlot.Colormap.GetColormaps().Select(c => c.Name).Distinct().Order(StringComparer.OrdinalIgnoreCase).ToArray();

    /// <summary>(256, 3) float32 RGB in [0, 1]: entry i is the colour of the value i / 255.</summary>
    public static Tensor Lookup(string name = DefaultName)
    {
        var map = ScottPlot.Colormap.GetColormaps().FirstOrDefault(c => string.Equals(c.Name, name, StringComparison.OrdinalIgnoreCase))
            ?? throw new ArgumentException($"unknown colour map '{name}'; known: {string.Join(", ", Names)}.");
        var rgb = new float[256 * 3];
        for (int i = 0; i < 256; i++)
        {
            var c = map.GetColor(i / 255.0);
            rgb[3 * i] = c.R / 255f;
            rgb[3 * i + 1] = c.G / 255f;
            rgb[3 * i + 2] = c.B / 255f;
        }
        return tensor(rgb, new long[] { 256, 3 });
    }
}
