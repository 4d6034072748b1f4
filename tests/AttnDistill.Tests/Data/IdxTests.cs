using System.IO.Compression;
using AttnDistill.Data;
using Xunit;
using static AttnDistill.Tests.Data.DataTestUtil;

namespace AttnDistill.Tests.Data;

public class IdxTests
{
    private const string FashionDir = "/usr/share/datasets/fashion-mnist";
    /// <summary>Writes {prefix}-images-idx3-ubyte and {prefix}-labels-idx1-ubyte; pixel (i, y, x) = i + y * side + x.</summary>
    internal static void WriteIdx(string dir, string prefix, int count, int side, bool gzip = false)
    {
        var img = new List<byte> { 0, 0, 8, 3 };
        foreach (int v in new[] { count, side, side }) img.AddRange(BitConverter.GetBytes(v).Reverse());
        for (int i = 0; i < count; i++)
            for (int p = 0; p < side * side; p++) img.Add((byte)(i + p));
        var lab = new List<byte> { 0, 0, 8, 1 };
        lab.AddRange(BitConverter.GetBytes(count).Reverse());
        for (int i = 0; i < count; i++) lab.Add((byte)(i % 10));
        Write(Path.Combine(dir, $"{prefix}-images-idx3-ubyte"), img.ToArray(), gzip);
        Write(Path.Combine(dir, $"{prefix}-labels-idx1-ubyte"), lab.ToArray(), gzip);
    }

    private static void Write(string path, byte[] bytes, bool gzip)
    {
        if (!gzip)
        {
            File.WriteAllBytes(path, bytes);
            return;
        }
        using var f = File.Create(path + ".gz");
        using var gz = new GZipStream(f, CompressionLevel.Fastest);
        gz.Write(bytes);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void ReadsRawAndGzip(bool gzip)
    {
        string dir = TempDir("idx");
        WriteIdx(dir, "train", 12, 5, gzip);
        WriteIdx(dir, "t10k", 3, 5, gzip);
        var train = DatasetFactory.Open(dir, DataSplit.Train);
        var val = DatasetFactory.Open(dir, DataSplit.Val);
        Assert.Equal(12, train.Count);
        Assert.Equal(3, val.Count);
        Assert.Equal(7, train.Label(7));
        var img = train.Load(4);
        Assert.Equal((5, 5, 3), (img.Width, img.Height, img.Channels));
        Assert.Equal(4 + 2 * 5 + 3, img.At(3, 2, 0));
        Assert.Equal(img.At(3, 2, 0), img.At(3, 2, 2));
        Assert.Equal("3", train.ClassNames[3]);
    }

    [Fact]
    public void RejectsWrongMagicAndTruncation()
    {
        string dir = TempDir("idxbad");
        WriteIdx(dir, "train", 4, 5);
        string images = Path.Combine(dir, "train-images-idx3-ubyte"), labels = Path.Combine(dir, "train-labels-idx1-ubyte");
        Assert.Throws<InvalidDataException>(() => new IdxDataset(labels, labels));
        var bytes = File.ReadAllBytes(images);
        File.WriteAllBytes(images, bytes.AsSpan(0, bytes.Length - 10).ToArray());
        Assert.Throws<InvalidDataException>(() => new IdxDataset(images, labels));
    }

    [SkippableFact]
    public void ReadsTheRealFashionMnistFiles()
    {
        // CI installs the data set, so there this test always runs; a user's clone without it reports a skip.
        Skip.IfNot(Directory.Exists(FashionDir), $"{FashionDir} absent (apt-get install -y dataset-fashion-mnist)");
        var train = DatasetFactory.Open(FashionDir, DataSplit.Train);
        var test = DatasetFactory.Open(FashionDir, DataSplit.Val, keepGrayscale: true);
        Assert.Equal(60000, train.Count);
        Assert.Equal(10000, test.Count);
        Assert.Equal("Ankle boot", train.ClassNames[9]);
        // Known first labels of the standard files: train starts 9 (ankle boot), 0, 0, 3; test starts 9, 2, 1, 1.
        Assert.Equal(new[] { 9, 0, 0, 3 }, Enumerable.Range(0, 4).Select(train.Label));
        Assert.Equal(new[] { 9, 2, 1, 1 }, Enumerable.Range(0, 4).Select(test.Label));
        var img = test.Load(0);
        Assert.Equal((28, 28, 1), (img.Width, img.Height, img.Channels));
        Assert.Equal(6000, Enumerable.Range(0, train.Count).Count(i => train.Label(i) == 3));
    }
}
