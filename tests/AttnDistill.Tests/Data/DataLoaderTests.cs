using AttnDistill.Data;
using AttnDistill.Data.Transforms;
using Xunit;
using static AttnDistill.Tests.Data.DataTestUtil;
using static TorchSharp.torch;

namespace AttnDistill.Tests.Data;

public class DataLoaderTests
{
    private sealed record Snapshot(float[] Images, long[] Labels, int[] Indices);

    private static List<Snapshot> Collect(DataLoader loader, int epoch, int startBatch = 0)
    {
        var result = new List<Snapshot>();
        foreach (var b in loader.Epoch(epoch, startBatch))
        {
            using var scope = NewDisposeScope();
            Assert.Equal(ScalarType.Float32, b.Images.dtype);
            Assert.True(b.Images.is_contiguous());
            Assert.Equal(ScalarType.Int64, b.Labels.dtype);
            result.Add(new Snapshot(Floats(b.Images), b.Labels.data<long>().ToArray(), b.Indices.ToArray()));
        }
        return result;
    }

    private static void AssertSame(List<Snapshot> a, List<Snapshot> b)
    {
        Assert.Equal(a.Count, b.Count);
        for (int i = 0; i < a.Count; i++)
        {
            Assert.Equal(a[i].Indices, b[i].Indices);
            Assert.Equal(a[i].Labels, b[i].Labels);
            Assert.Equal(a[i].Images, b[i].Images);
        }
    }

    private static DataLoader Loader(IImageDataset ds, int workers, int batch = 4, Action<string>? log = null, bool dropLast = false) =>
        new(ds, TransformPresets.Train(8), new DataLoaderOptions { BatchSize = batch, Workers = workers, Seed = 42, Log = log, DropLast = dropLast });

    [Fact]
    public void SameSeedSameBatchesWhateverTheWorkerCount()
    {
        var ds = new ImageFolderDataset(MakeFolder("det", perClass: 7));
        var a = Collect(Loader(ds, workers: 2), epoch: 0);
        var b = Collect(Loader(ds, workers: 2), epoch: 0);
        var c = Collect(Loader(ds, workers: 0), epoch: 0);
        var d = Collect(Loader(ds, workers: 1, batch: 4), epoch: 0);
        AssertSame(a, b);
        AssertSame(a, c);
        AssertSame(a, d);
        Assert.Equal(6, a.Count); // 21 items, batch 4, last batch of 1 kept
        Assert.Single(a[^1].Indices);
        Assert.Equal(Enumerable.Range(0, 21), a.SelectMany(s => s.Indices).Order());
        for (int i = 0; i < a.Count; i++)
            Assert.Equal(a[i].Indices.Select(ds.Label).Select(l => (long)l), a[i].Labels);
    }

    [Fact]
    public void EpochsDifferAndResumeMidEpoch()
    {
        var ds = new ImageFolderDataset(MakeFolder("epochs", perClass: 5));
        var loader = Loader(ds, workers: 2);
        var e0 = Collect(loader, 0);
        var e1 = Collect(loader, 1);
        Assert.NotEqual(e0.SelectMany(s => s.Indices), e1.SelectMany(s => s.Indices));
        // The same image gets a different augmentation in another epoch.
        int idx = e0[0].Indices[0];
        int pos1 = e1.SelectMany(s => s.Indices).ToList().IndexOf(idx);
        var img0 = e0[0].Images.AsSpan(0, 3 * 64).ToArray();
        var img1 = e1[pos1 / 4].Images.AsSpan(pos1 % 4 * 3 * 64, 3 * 64).ToArray();
        Assert.NotEqual(img0, img1);
        // Resuming at batch 2 gives batches 2.. of the full epoch.
        AssertSame(e1.Skip(2).ToList(), Collect(loader, 1, startBatch: 2));
        Assert.Empty(Collect(loader, 1, startBatch: loader.BatchesPerEpoch));
        Assert.Throws<ArgumentOutOfRangeException>(() => loader.Epoch(0, loader.BatchesPerEpoch + 1));
    }

    [Fact]
    public void ShardsAreDisjointAndCover()
    {
        var ds = new ImageFolderDataset(MakeFolder("shard", perClass: 7)); // 21 items
        List<int> Shard(int rank, int world, bool dropTail) =>
            Collect(new DataLoader(ds, TransformPresets.Eval(8), new DataLoaderOptions
            {
                BatchSize = 5, Workers = 1, Seed = 3, Rank = rank, WorldSize = world, ShardDropTail = dropTail,
            }), epoch: 2).SelectMany(s => s.Indices).ToList();

        // Padded (PyTorch's default): 11 + 11, covering all 21 with one repeat.
        var r0 = Shard(0, 2, false);
        var r1 = Shard(1, 2, false);
        Assert.Equal(11, r0.Count);
        Assert.Equal(11, r1.Count);
        Assert.Equal(Enumerable.Range(0, 21), r0.Concat(r1).Distinct().Order());
        // Tail dropped: 10 + 10, disjoint.
        var d0 = Shard(0, 2, true);
        var d1 = Shard(1, 2, true);
        Assert.Equal(10, d0.Count);
        Assert.Empty(d0.Intersect(d1));
        Assert.Equal(20, d0.Concat(d1).Distinct().Count());
        // Three ranks over 21: exactly disjoint and covering.
        var all = Enumerable.Range(0, 3).Select(r => Shard(r, 3, false)).ToList();
        Assert.Equal(21, all.Sum(s => s.Count));
        Assert.Equal(Enumerable.Range(0, 21), all.SelectMany(s => s).Order());
    }

    [Fact]
    public void DropLastDropsThePartialBatch()
    {
        var ds = new ImageFolderDataset(MakeFolder("droplast", perClass: 3)); // 9 items
        var loader = Loader(ds, workers: 1, batch: 4, dropLast: true);
        Assert.Equal(2, loader.BatchesPerEpoch);
        var batches = Collect(loader, 0);
        Assert.Equal(2, batches.Count);
        Assert.All(batches, b => Assert.Equal(4, b.Indices.Length));
    }

    [Fact]
    public void UnreadableFilesAreReplacedCountedAndLoggedOnce()
    {
        string root = MakeFolder("bad", perClass: 4);
        File.WriteAllBytes(Path.Combine(root, "a", "000.png"), Array.Empty<byte>()); // zero bytes, first item
        File.WriteAllText(Path.Combine(root, "b", "text.jpg"), "not an image");
        var jpeg = File.ReadAllBytes(FixtureImage("big.jpg"));
        File.WriteAllBytes(Path.Combine(root, "c", "corrupt.jpg"), jpeg.AsSpan(0, 600).ToArray());
        File.WriteAllText(Path.Combine(root, "c", "notes.txt"), "ignored: not an image extension");
        var ds = new ImageFolderDataset(root);
        Assert.Equal(14, ds.Count); // 12 + text.jpg + corrupt.jpg (000.png overwritten)
        var log = new List<string>();
        var loader = Loader(ds, workers: 2, batch: 4, log: s => { lock (log) log.Add(s); });
        var e0 = Collect(loader, 0);
        var e1 = Collect(loader, 1);
        Assert.Equal(3, loader.UnreadableCount);
        Assert.Equal(3, log.Count); // once each, over both epochs
        Assert.Contains(log, l => l.Contains("000.png"));
        Assert.Contains(log, l => l.Contains("text.jpg"));
        Assert.Contains(log, l => l.Contains("corrupt.jpg"));
        Assert.Equal(3, loader.UnreadableItems.Count);
        // Batches keep their size; the unreadable items never appear, their replacements do.
        Assert.Equal(14, e0.Sum(b => b.Indices.Length));
        var bad = loader.UnreadableItems.Select(n => Enumerable.Range(0, ds.Count).First(i => ds.ItemName(i) == n)).ToHashSet();
        Assert.DoesNotContain(e0.Concat(e1).SelectMany(b => b.Indices), bad.Contains);
        // Deterministic with a fresh loader (which discovers the bad files in another order).
        AssertSame(e1, Collect(Loader(ds, workers: 1, batch: 4), 1));
    }

    [Fact]
    public void NoReadableImageIsAnErrorBeforeTraining()
    {
        string root = TempDir("allbad");
        Directory.CreateDirectory(Path.Combine(root, "x"));
        File.WriteAllText(Path.Combine(root, "x", "a.jpg"), "nope");
        File.WriteAllBytes(Path.Combine(root, "x", "b.png"), Array.Empty<byte>());
        var ds = new ImageFolderDataset(root);
        var e = Assert.Throws<InvalidDataException>(() => Loader(ds, workers: 1));
        Assert.Contains("no readable image", e.Message);
        Assert.Throws<InvalidDataException>(() => Loader(new ImageFolderDataset(MakeFolder("empty", perClass: 0)), workers: 1));
    }

    [Fact]
    public void BatchTensorsBelongToTheLoader()
    {
        var ds = new ImageFolderDataset(MakeFolder("own", perClass: 4));
        var loader = Loader(ds, workers: 1, batch: 4);
        var seen = new List<DataBatch>();
        using (var outer = NewDisposeScope())
        {
            foreach (var b in loader.Epoch(0))
            {
                using (var scope = NewDisposeScope())
                {
                    using var mean = b.Images.mean();
                    Assert.False(float.IsNaN(mean.item<float>()));
                }
                Assert.False(b.Images.IsInvalid); // the step's scope did not take it
                seen.Add(b);
                if (seen.Count > 1) Assert.True(seen[^2].Images.IsInvalid); // previous one released
            }
            Assert.Equal(0, outer.DisposablesCount); // nothing leaked into the caller's scope
        }
        Assert.All(seen, b => Assert.True(b.Images.IsInvalid && b.Labels.IsInvalid));
        // Abandoning an epoch early stops the workers and frees the batch.
        DataBatch? first = null;
        foreach (var b in loader.Epoch(1)) { first = b; break; }
        Assert.True(first!.Images.IsInvalid);
    }

    private sealed class LyingTransform : IImageTransform
    {
        public (int Width, int Height)? OutputSize => (8, 8);
        public DecodedImage Apply(DecodedImage image, IRandomSource random) => new CenterCrop(4).Apply(image, random);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(2)]
    public void TransformErrorsReachTheConsumer(int workers)
    {
        var ds = new ImageFolderDataset(MakeFolder("lying", perClass: 3));
        var loader = new DataLoader(ds, new LyingTransform(), new DataLoaderOptions { BatchSize = 4, Workers = workers });
        var e = Assert.ThrowsAny<InvalidOperationException>(() => loader.Epoch(0).ToList());
        Assert.Contains("expected 8x8x3", e.ToString());
    }

    [Fact]
    public void GrayscaleIdxKeepsOneChannel()
    {
        string dir = TempDir("idx1");
        IdxTests.WriteIdx(dir, "train", count: 10, side: 6);
        var ds = new IdxDataset(Path.Combine(dir, "train-images-idx3-ubyte"), Path.Combine(dir, "train-labels-idx1-ubyte"), keepGrayscale: true);
        var loader = new DataLoader(ds, TransformPresets.Eval(4, 6), new DataLoaderOptions { BatchSize = 5, Workers = 1, Mean = new[] { 0.5f }, Std = new[] { 0.5f } });
        foreach (var b in loader.Epoch(0)) Assert.Equal(new long[] { 5, 1, 4, 4 }, b.Images.shape);
        Assert.Throws<ArgumentException>(() => new DataLoader(ds, TransformPresets.Eval(4), new DataLoaderOptions()));
    }
}
