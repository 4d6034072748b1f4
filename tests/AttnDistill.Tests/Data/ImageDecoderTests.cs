using AttnDistill.Data;
using Xunit;
using static AttnDistill.Tests.Data.DataTestUtil;

namespace AttnDistill.Tests.Data;

public class ImageDecoderTests
{
    private static int MaxDiff(byte[] a, byte[] b)
    {
        Assert.Equal(a.Length, b.Length);
        int m = 0;
        for (int i = 0; i < a.Length; i++) m = Math.Max(m, Math.Abs(a[i] - b[i]));
        return m;
    }

    [Theory]
    [InlineData("cifar_cat.jpg", 0)]
    [InlineData("cifar_ship.jpg", 0)]
    [InlineData("cifar_frog.jpg", 0)]
    [InlineData("gray.jpg", 0)]
    [InlineData("gray.png", 0)]
    [InlineData("alpha.png", 0)]
    [InlineData("one.png", 0)]
    [InlineData("palette.png", 0)]
    [InlineData("small.bmp", 0)]
    [InlineData("small.webp", 0)]
    [InlineData("cmyk.jpg", 0)]
    public void DecodesLikePilConvertRgb(string name, int tolerance)
    {
        var fx = LoadFixture("pipeline.pt");
        var expected = Bytes(fx, "decoded/" + name);
        var shape = Shape(fx, "decoded/" + name); // (H, W, 3)
        var bytes = File.ReadAllBytes(FixtureImage(name));
        foreach (var img in new[] { ImageDecoder.Decode(bytes, name), ImageDecoder.DecodeWithSkia(bytes, name) })
        {
            Assert.Equal(3, img.Channels);
            Assert.Equal(shape[0], img.Height);
            Assert.Equal(shape[1], img.Width);
            Assert.True(MaxDiff(expected, img.Pixels) <= tolerance, $"{name}: max diff {MaxDiff(expected, img.Pixels)}");
        }
    }

    [Fact]
    public void CmykJpegGivesPlausibleRgb()
    {
        // Quadrants: cyan, magenta, yellow, 50% black (see make_fixtures.py).
        var img = ImageDecoder.DecodeFile(FixtureImage("cmyk.jpg"));
        var fx = LoadFixture("pipeline.pt");
        var pil = Bytes(fx, "decoded/cmyk.jpg");
        foreach (var (x, y) in new[] { (5, 5), (30, 5), (5, 22), (30, 22) })
            for (int c = 0; c < 3; c++)
                Assert.InRange(Math.Abs(img.At(x, y, c) - pil[(y * 40 + x) * 3 + c]), 0, 40);
        Assert.True(img.At(5, 5, 0) < 80 && img.At(5, 5, 1) > 180 && img.At(5, 5, 2) > 180, "cyan quadrant");
    }

    [Fact]
    public void BigImagesDecodeLikePil()
    {
        var fx = LoadFixture("pipeline.pt");
        foreach (var (name, tol, skia) in new[] { ("big.png", 0, false), ("big.jpg", 0, false), ("big.jpg", 0, true) })
        {
            var bytes = File.ReadAllBytes(FixtureImage(name));
            var img = skia ? ImageDecoder.DecodeWithSkia(bytes, name) : ImageDecoder.Decode(bytes, name);
            Assert.Equal((500, 375), (img.Width, img.Height));
            var grid = Bytes(fx, "decodedgrid/" + name);
            var ours = new List<byte>();
            for (int y = 0; y < 375; y += 7)
                for (int x = 0; x < 500; x += 7)
                    for (int c = 0; c < 3; c++) ours.Add(img.At(x, y, c));
            Assert.True(MaxDiff(grid, ours.ToArray()) <= tol, $"{name}: max diff {MaxDiff(grid, ours.ToArray())}");
        }
    }

    [Fact]
    public void ReportsWhichJpegDecoderRuns()
    {
        // Informational: the fast path needs Debian's libturbojpeg0; results are the same either way.
        Console.WriteLine($"TurboJPEG available: {ImageDecoder.TurboJpegAvailable}");
        Assert.Equal(OperatingSystem.IsLinux() && File.Exists("/usr/lib/x86_64-linux-gnu/libturbojpeg.so.0"), ImageDecoder.TurboJpegAvailable);
    }

    [Fact]
    public void AlphaIsDroppedNotBlended()
    {
        var img = ImageDecoder.DecodeFile(FixtureImage("alpha.png"));
        // Column 0 has alpha 0 but colour (0, 200, 15*y): PIL keeps the colour.
        Assert.Equal(200, img.At(0, 3, 1));
        Assert.Equal(45, img.At(0, 3, 2));
    }

    [Fact]
    public void UnreadableInputsThrowInvalidData()
    {
        string dir = TempDir("dec");
        string zero = Path.Combine(dir, "zero.jpg");
        File.WriteAllBytes(zero, Array.Empty<byte>());
        string text = Path.Combine(dir, "text.jpg");
        File.WriteAllText(text, "this is not a JPEG");
        string truncated = Path.Combine(dir, "truncated.jpg");
        var big = File.ReadAllBytes(FixtureImage("big.jpg"));
        File.WriteAllBytes(truncated, big.AsSpan(0, big.Length / 3).ToArray());
        foreach (string p in new[] { zero, text, truncated })
        {
            Assert.Throws<InvalidDataException>(() => ImageDecoder.DecodeFile(p));
            Assert.Throws<InvalidDataException>(() => ImageDecoder.DecodeWithSkia(File.ReadAllBytes(p), p));
        }
        Assert.Null(ImageDecoder.TryReadSize(zero));
        Assert.Null(ImageDecoder.TryReadSize(text));
        Assert.Equal((500, 375), ImageDecoder.TryReadSize(FixtureImage("big.jpg")));
    }
}
