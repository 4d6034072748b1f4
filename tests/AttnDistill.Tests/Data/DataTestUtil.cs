using System.Collections;
using AttnDistill.Data;
using SkiaSharp;
using TorchSharp;
using TorchSharp.PyBridge;
using static TorchSharp.torch;

namespace AttnDistill.Tests.Data;

/// <summary>Helpers: temp folders of generated images, fixture access, a torch-generator random source.</summary>
internal static class DataTestUtil
{
    public static string FixtureDir => Path.Combine(AppContext.BaseDirectory, "fixtures", "data");

    public static string FixtureImage(string name) => Path.Combine(FixtureDir, "images", name);

    public static Hashtable LoadFixture(string file) => PyTorchUnpickler.UnpickleStateDict(Path.Combine(FixtureDir, file));

    public static byte[] Bytes(Hashtable h, string key) => ((Tensor)h[key]!).contiguous().data<byte>().ToArray();

    public static long[] Longs(Hashtable h, string key) => ((Tensor)h[key]!).to_type(ScalarType.Int64).contiguous().data<long>().ToArray();

    public static long[] Shape(Hashtable h, string key) => ((Tensor)h[key]!).shape;

    public static string TempDir(string tag) => Directory.CreateTempSubdirectory("attndistill-" + tag + "-").FullName;

    /// <summary>A w x h image whose colour encodes (seed, x, y), written as PNG or JPEG by SkiaSharp.</summary>
    public static void WriteImage(string path, int w, int h, int seed, SKEncodedImageFormat format = SKEncodedImageFormat.Png)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        using var bmp = new SKBitmap(new SKImageInfo(w, h, SKColorType.Rgba8888, SKAlphaType.Premul));
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                bmp.SetPixel(x, y, new SKColor((byte)(seed * 37 + x * 5), (byte)(seed * 91 + y * 3), (byte)(x * y + seed)));
        using var img = SKImage.FromBitmap(bmp);
        using var data = img.Encode(format, 90);
        using var f = File.Create(path);
        data.SaveTo(f);
    }

    /// <summary>root/{a,b,c}/NNN.png: `perClass` small images per class, distinct content per item.</summary>
    public static string MakeFolder(string tag, int perClass, int classes = 3, int size = 12)
    {
        string root = TempDir(tag);
        for (int c = 0; c < classes; c++)
            for (int i = 0; i < perClass; i++)
                WriteImage(Path.Combine(root, ((char)('a' + c)).ToString(), $"{i:D3}.png"), size + i % 3, size, c * 100 + i);
        return root;
    }

    /// <summary>Float data of a tensor (tests only).</summary>
    public static float[] Floats(Tensor t) => t.contiguous().data<float>().ToArray();
}

/// <summary>Draws through libtorch's generator exactly as torchvision's Python code does.</summary>
internal sealed class TorchRandom : IRandomSource, IDisposable
{
    private readonly torch.Generator _g;

    public TorchRandom(long seed)
    {
        _g = new torch.Generator((ulong)seed);
    }

    public float Uniform(double low, double high)
    {
        using var t = torch.empty(1).uniform_(low, high, _g);
        return t.item<float>();
    }

    public int Integer(int low, int high)
    {
        using var t = torch.randint(low, high, new long[] { 1 }, generator: _g);
        return (int)t.item<long>();
    }

    public float Unit()
    {
        using var t = torch.rand(1, generator: _g);
        return t.item<float>();
    }

    public void Dispose() => _g.Dispose();
}
