using AttnDistill.Data;
using AttnDistill.Data.Transforms;
using AttnDistill.Pretraining.Dino;
using Xunit;
using static TorchSharp.torch;

namespace AttnDistill.Tests.Pretraining.Dino;

/// <summary>DataAugmentationDINO's crops, packed into one image for the shared loader, and the colour operations it uses.</summary>
public class DinoAugmentationTests
{
    [Theory]
    [InlineData(224, 16, 96)]
    [InlineData(28, 4, 12)]
    [InlineData(32, 4, 12)]
    [InlineData(16, 8, 8)]
    public void LocalCropSizeIsDinosRatioOnThePatchGrid(int image, int patch, int expected) =>
        Assert.Equal(expected, DinoCropConfig.DefaultLocalSize(image, patch));

    [Fact]
    public void PackedCropsSplitBackExactly()
    {
        var layout = new MultiCropLayout(new[] { 6, 6, 3, 3, 3 });
        var rng = new SampleRandom(1);
        var crops = layout.Sizes.Select(s => new DecodedImage(s, s, 3, Enumerable.Range(0, s * s * 3).Select(_ => (byte)rng.Integer(0, 256)).ToArray())).ToArray();
        var packed = layout.Pack(crops);
        Assert.Equal(layout.PackedSide, packed.Width);
        var chw = new float[packed.Pixels.Length];
        new PixelNormalizer(3, null, null).WriteChw(packed, chw);
        using var batch = tensor(chw, new long[] { 1, 3, layout.PackedSide, layout.PackedSide });
        var split = layout.Split(batch);
        for (int i = 0; i < crops.Length; i++)
        {
            var want = new float[crops[i].Pixels.Length];
            new PixelNormalizer(3, null, null).WriteChw(crops[i], want);
            using var w = tensor(want, new long[] { 1, 3, crops[i].Width, crops[i].Width });
            Assert.True(w.allclose(split[i], 0, 0), $"crop {i}");
        }
    }

    [Fact]
    public void AugmentationIsSeededAndCropsDiffer()
    {
        var aug = new DinoAugmentation(new DinoCropConfig { GlobalSize = 16, LocalSize = 8, LocalCropsNumber = 3 });
        var image = new TestSupport.SyntheticImageDataset(1, 24, 1, seed: 4).Load(0);
        var a = aug.Apply(image, new SampleRandom(7, 0, 0));
        var b = aug.Apply(image, new SampleRandom(7, 0, 0));
        var c = aug.Apply(image, new SampleRandom(8, 0, 0));
        Assert.Equal(a.Pixels, b.Pixels);
        Assert.NotEqual(a.Pixels, c.Pixels);
        Assert.Equal((aug.Layout.PackedSide, aug.Layout.PackedSide), aug.OutputSize);
        Assert.Equal(5, aug.Layout.Sizes.Count);
    }

    [Fact]
    public void ColourOperationsDoWhatPilDoes()
    {
        var img = new DecodedImage(2, 1, 3, new byte[] { 200, 100, 50, 10, 130, 255 });
        Assert.Equal(new byte[] { 55, 100, 50, 10, 125, 0 }, new Solarization(1).Apply(img, new SampleRandom(0)).Pixels);
        var gray = new RandomGrayscale(1).Apply(img, new SampleRandom(0)).Pixels;
        Assert.Equal((byte)((200 * 299 + 100 * 587 + 50 * 114 + 500) / 1000), gray[0]);
        Assert.Equal(gray[0], gray[2]);
        // Saturation and hue leave a gray image gray; brightness and contrast change it.
        var g = new DecodedImage(2, 1, 3, new byte[] { 40, 40, 40, 200, 200, 200 });
        var jittered = new ColorJitter(0.4, 0.4, 0.2, 0.1).Apply(g, new SampleRandom(3)).Pixels;
        Assert.Equal(jittered[0], jittered[1]);
        Assert.Equal(jittered[3], jittered[5]);
        Assert.NotEqual(g.Pixels, jittered);
        var blurred = GaussianBlur.Blur(new DecodedImage(3, 1, 1, new byte[] { 0, 255, 0 }), 1.0).Pixels;
        Assert.True(blurred[1] < 255 && blurred[0] > 0 && blurred[0] == blurred[2]);
        Assert.Same(img, new RandomApply(new Solarization(1), 0).Apply(img, new SampleRandom(0)));
    }
}
