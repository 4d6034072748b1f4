using AttnDistill.Checkpoints;
using AttnDistill.Models;
using AttnDistill.Visualization;
using SkiaSharp;
using static TorchSharp.torch;

namespace AttnDistill.Tests.Visualization;

/// <summary>Tiny random ViTs (a 4-head teacher at patch 4, students at patch 8 and 4) and checks on written PNGs.</summary>
internal static class VisualizationFixtures
{
    public const int ImageSize = 16;

    public static VitConfig Teacher => new() { ImageSize = ImageSize, PatchSize = 4, EmbedDim = 32, Depth = 2, NumHeads = 4 };
    public static VitConfig StudentPatch8 => new() { ImageSize = ImageSize, PatchSize = 8, EmbedDim = 24, Depth = 2, NumHeads = 2 };
    public static VitConfig StudentPatch4 => new() { ImageSize = ImageSize, PatchSize = 4, EmbedDim = 24, Depth = 1, NumHeads = 3 };

    public static VisionTransformer Model(VitConfig cfg, int seed)
    {
        manual_seed(seed);
        var m = new VisionTransformer(cfg);
        m.eval();
        return m;
    }

    /// <summary>Teacher and two students saved as backbone.safetensors files (with their configs).</summary>
    public static (NamedCheckpoint Teacher, NamedCheckpoint[] Students) Checkpoints()
    {
        string dir = Directory.CreateTempSubdirectory("attndistill-viz-ckpt-").FullName;
        NamedCheckpoint Save(string name, VitConfig cfg, int seed)
        {
            using var m = Model(cfg, seed);
            string path = Path.Combine(dir, name + ".safetensors");
            BackboneExport.SaveSafetensors(m, path, cfg);
            return new NamedCheckpoint(name, path);
        }
        return (Save("teacher", Teacher, 1), new[] { Save("student p8", StudentPatch8, 2), Save("student p4", StudentPatch4, 3) });
    }

    /// <summary>Opens a PNG and checks its size and that it is not blank (many distinct colours, far from one flat colour).</summary>
    public static SKBitmap AssertPicture(string path, int? width = null, int? height = null, int minColours = 50)
    {
        Xunit.Assert.True(File.Exists(path), $"{path} was not written");
        var bitmap = SKBitmap.Decode(path);
        Xunit.Assert.NotNull(bitmap);
        if (width is int w) Xunit.Assert.Equal(w, bitmap.Width);
        if (height is int h) Xunit.Assert.Equal(h, bitmap.Height);
        var colours = new HashSet<uint>();
        for (int y = 0; y < bitmap.Height; y += 2)
            for (int x = 0; x < bitmap.Width; x += 2)
                colours.Add((uint)bitmap.GetPixel(x, y));
        Xunit.Assert.True(colours.Count >= minColours, $"{path}: only {colours.Count} distinct colours: blank picture?");
        return bitmap;
    }
}
