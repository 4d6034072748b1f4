using AttnDistill.Data;
using AttnDistill.Data.Transforms;
using Xunit;
using Xunit.Abstractions;
using static AttnDistill.Tests.Data.DataTestUtil;
using static TorchSharp.torch;

namespace AttnDistill.Tests.Data;

/// <summary>Against torchvision 0.14 + Pillow outputs made by tests/fixtures/data/make_fixtures.py.</summary>
public class TransformParityTests
{
    private readonly ITestOutputHelper _out;

    public TransformParityTests(ITestOutputHelper output) => _out = output;

    private static string[] FixtureNames() => File.ReadAllLines(Path.Combine(FixtureDir, "image_names.txt"));

    private static int MaxDiff(byte[] a, byte[] b)
    {
        Assert.Equal(a.Length, b.Length);
        int m = 0;
        for (int i = 0; i < a.Length; i++) m = Math.Max(m, Math.Abs(a[i] - b[i]));
        return m;
    }

    [Fact]
    public void ResizedCropMatchesTorchvisionGivenTheBox()
    {
        var fx = LoadFixture("crops.pt");
        var boxes = Longs(fx, "crop_boxes");
        var names = FixtureNames();
        int cases = boxes.Length / 5;
        for (int k = 0; k < cases; k++)
        {
            int top = (int)boxes[5 * k], left = (int)boxes[5 * k + 1], h = (int)boxes[5 * k + 2], w = (int)boxes[5 * k + 3], size = (int)boxes[5 * k + 4];
            var img = ImageDecoder.DecodeFile(FixtureImage(names[k]));
            var ours = PilBicubic.ResizeCrop(img.Pixels, img.Width, img.Height, 3, left, top, w, h, size, size);
            int diff = MaxDiff(Bytes(fx, $"crop/{k}"), ours);
            _out.WriteLine($"{names[k]} box ({top},{left},{h},{w}) -> {size}: max diff {diff}");
            // Acceptance bound is 2/255; the PIL algorithm reproduced in integers gives 0 here.
            Assert.True(diff <= 2, $"case {k}: max diff {diff}");
            Assert.Equal(0, diff);
        }
    }

    [Fact]
    public void EvalTransformMatchesTorchvision()
    {
        var fx = LoadFixture("pipeline.pt");
        var sizes = Longs(fx, "eval_sizes");
        var names = FixtureNames().Skip(Longs(LoadFixture("crops.pt"), "crop_boxes").Length / 5).ToArray();
        for (int k = 0; k < sizes.Length / 2; k++)
        {
            var t = TransformPresets.Eval((int)sizes[2 * k + 1], (int)sizes[2 * k]);
            var outImg = t.Apply(ImageDecoder.DecodeFile(FixtureImage(names[k])), new SampleRandom(0));
            var shape = Shape(fx, $"eval/{k}");
            Assert.Equal((shape[1], shape[0]), (outImg.Width, outImg.Height));
            Assert.Equal(0, MaxDiff(Bytes(fx, $"eval/{k}"), outImg.Pixels));
        }
    }

    [Fact]
    public void CropSamplingMatchesTorchvisionDrawForDraw()
    {
        var fx = LoadFixture("sampling.pt");
        var shapes = new[] { (500, 375), (32, 32), (1000, 40), (40, 1000) };
        for (int si = 0; si < shapes.Length; si++)
        {
            var (w, h) = shapes[si];
            foreach (double scaleMin in new[] { 0.2, 0.08 })
            {
                var expected = Longs(fx, $"params/{w}x{h}/{scaleMin.ToString(System.Globalization.CultureInfo.InvariantCulture)}");
                using var rng = new TorchRandom(1234 + si);
                for (int t = 0; t < expected.Length / 4; t++)
                {
                    var box = RandomResizedCrop.SampleBox(w, h, (scaleMin, 1.0), (3.0 / 4.0, 4.0 / 3.0), rng);
                    Assert.Equal((expected[4 * t], expected[4 * t + 1], expected[4 * t + 2], expected[4 * t + 3]),
                        ((long)box.Top, (long)box.Left, (long)box.Height, (long)box.Width));
                }
            }
        }
    }

    [Fact]
    public void SeededTrainPipelineMatchesTorchvision()
    {
        // torch.manual_seed(7); [RRC(48, (0.2, 1), bicubic), flip, ToTensor, Normalize] x 3 on big.png.
        var fx = LoadFixture("pipeline.pt");
        var expected = Floats((Tensor)fx["train_seed7_big_png"]!);
        var img = ImageDecoder.DecodeFile(FixtureImage("big.png"));
        var t = TransformPresets.Train(48, 0.2);
        using var rng = new TorchRandom(7);
        var buffer = new byte[3 * 48 * 48 * 3];
        for (int i = 0; i < 3; i++)
            Buffer.BlockCopy(t.Apply(img, rng).Pixels, 0, buffer, i * 48 * 48 * 3, 48 * 48 * 3);
        using var batch = ImageTensors.BatchFromHwc(buffer, 3, 48, 48, 3, ImageTensors.ImageNetMean, ImageTensors.ImageNetStd);
        Assert.Equal(new long[] { 3, 3, 48, 48 }, batch.shape);
        Assert.True(batch.is_contiguous());
        var ours = Floats(batch);
        float maxDiff = 0;
        for (int i = 0; i < ours.Length; i++) maxDiff = Math.Max(maxDiff, Math.Abs(ours[i] - expected[i]));
        _out.WriteLine($"max |diff| {maxDiff}");
        Assert.True(maxDiff < 1e-6f, $"max diff {maxDiff}");
        // The loader's path (per-sample lookup table into CHW floats) gives the same bits.
        var normalizer = new PixelNormalizer(3, ImageTensors.ImageNetMean, ImageTensors.ImageNetStd);
        var chw = new float[ours.Length];
        for (int i = 0; i < 3; i++)
        {
            var one = new DecodedImage(48, 48, 3, buffer.AsSpan(i * 48 * 48 * 3, 48 * 48 * 3).ToArray());
            normalizer.WriteChw(one, chw.AsSpan(i * 3 * 48 * 48));
        }
        Assert.Equal(expected, chw);
    }

    [Fact]
    public void ShuffleOrderMatchesPyTorchDistributedSampler()
    {
        var fx = LoadFixture("sampling.pt");
        var perm = Longs(fx, "randperm_seed5_epoch3_n100");
        Assert.Equal(perm.Select(v => (int)v).ToArray(), ShardedOrder.ForEpoch(100, 3, 5, shuffle: true));
        for (int rank = 0; rank < 3; rank++)
            foreach (bool drop in new[] { false, true })
            {
                var expected = Longs(fx, $"shard/n10/w3/r{rank}/drop{(drop ? 1 : 0)}").Select(v => (int)v);
                Assert.Equal(expected, ShardedOrder.ForEpoch(10, 3, 5, true, rank, 3, drop));
            }
    }

    [Fact]
    public void FlipAndToTensor()
    {
        var img = new DecodedImage(3, 2, 3, Enumerable.Range(0, 18).Select(i => (byte)(i * 10)).ToArray());
        var f = RandomHorizontalFlip.Flip(img);
        Assert.Equal(img.At(0, 1, 2), f.At(2, 1, 2));
        Assert.Equal(img.At(2, 0, 0), f.At(0, 0, 0));
        using var t = ImageTensors.ToTensor(img);
        Assert.Equal(new long[] { 3, 2, 3 }, t.shape);
        Assert.Equal(img.At(1, 1, 2) / 255f, t[2, 1, 1].item<float>(), 6);
        // p = 1 always flips, p = 0 never.
        Assert.Equal(f.Pixels, new RandomHorizontalFlip(1).Apply(img, new SampleRandom(1)).Pixels);
        Assert.Same(img, new RandomHorizontalFlip(0).Apply(img, new SampleRandom(1)));
    }

    [Fact]
    public void CenterCropPadsSmallImages()
    {
        var img = new DecodedImage(2, 2, 1, new byte[] { 1, 2, 3, 4 });
        var c = new CenterCrop(4).Apply(img, new SampleRandom(0));
        Assert.Equal(new byte[] { 0, 0, 0, 0, 0, 1, 2, 0, 0, 3, 4, 0, 0, 0, 0, 0 }, c.Pixels);
    }

    [Fact]
    public void TheVectorisedHorizontalPassEqualsTheScalarOneBitForBit()
    {
        var rng = new Random(5);
        for (int trial = 0; trial < 300; trial++)
        {
            int w = rng.Next(1, 90), h = rng.Next(1, 60);
            var src = new byte[w * h * 3];
            rng.NextBytes(src);
            // Crops anywhere, including ones that end at the buffer's last byte (the scalar fallback).
            int cw = rng.Next(1, w + 1), ch = rng.Next(1, h + 1);
            int cx = trial % 3 == 0 ? w - cw : rng.Next(0, w - cw + 1), cy = trial % 3 == 0 ? h - ch : rng.Next(0, h - ch + 1);
            int ow = rng.Next(1, 70), oh = rng.Next(1, 50);
            var vector = PilBicubic.ResizeCrop(src, w, h, 3, cx, cy, cw, ch, ow, oh, simd: true);
            var scalar = PilBicubic.ResizeCrop(src, w, h, 3, cx, cy, cw, ch, ow, oh, simd: false);
            Assert.True(vector.AsSpan().SequenceEqual(scalar), $"trial {trial}: {w}x{h} crop ({cx},{cy},{cw}x{ch}) -> {ow}x{oh}");
        }
    }
}
