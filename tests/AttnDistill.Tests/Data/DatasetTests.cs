using AttnDistill.Data;
using Xunit;
using static AttnDistill.Tests.Data.DataTestUtil;

namespace AttnDistill.Tests.Data;

public class DatasetTests
{
    [Fact]
    public void ImageFolderOrdersLikeTorchvisionAndToleratesEmptyClasses()
    {
        string root = TempDir("folder");
        WriteImage(Path.Combine(root, "dog", "b.png"), 4, 4, 1);
        WriteImage(Path.Combine(root, "dog", "a.PNG"), 4, 4, 2);
        WriteImage(Path.Combine(root, "dog", "sub", "c.png"), 4, 4, 3);
        WriteImage(Path.Combine(root, "Cat", "z.png"), 4, 4, 4);
        Directory.CreateDirectory(Path.Combine(root, "empty"));
        File.WriteAllText(Path.Combine(root, "dog", "readme.txt"), "x");
        var ds = new ImageFolderDataset(root);
        Assert.Equal(new[] { "Cat", "dog", "empty" }, ds.ClassNames); // ordinal: upper case first
        Assert.Equal(new[] { "z.png", "a.PNG", "b.png", "c.png" }, Enumerable.Range(0, ds.Count).Select(i => Path.GetFileName(ds.ItemName(i))));
        Assert.Equal(new[] { 0, 1, 1, 1 }, Enumerable.Range(0, ds.Count).Select(ds.Label));
        Assert.Equal(new[] { 1, 3, 0 }, ds.CountsPerClass());
    }

    [Fact]
    public void ClassListSelectsClassesWithoutCopying()
    {
        string root = MakeFolder("subset", perClass: 2, classes: 4);
        string list = Path.Combine(TempDir("lists"), "classes.txt");
        File.WriteAllLines(list, new[] { "# ImageNet-Subset style", "d", "b", "" });
        var ds = new ImageFolderDataset(root, ImageFolderDataset.ReadClassList(list));
        Assert.Equal(new[] { "b", "d" }, ds.ClassNames);
        Assert.Equal(4, ds.Count);
        Assert.Contains("/d/", ds.ItemName(3));
        Assert.Equal(1, ds.Label(3));
        var e = Assert.Throws<ArgumentException>(() => new ImageFolderDataset(root, new[] { "b", "zebra" }));
        Assert.Contains("zebra", e.Message);
    }

    [Fact]
    public void FactoryDetectsImageFolderSplits()
    {
        string root = TempDir("factory");
        WriteImage(Path.Combine(root, "train", "x", "1.png"), 5, 5, 1);
        WriteImage(Path.Combine(root, "train", "y", "1.png"), 5, 5, 2);
        WriteImage(Path.Combine(root, "test", "x", "1.png"), 5, 5, 3);
        Assert.Equal(DataFormat.ImageFolder, DatasetFactory.Detect(root)!.Value.Format);
        Assert.Equal(2, DatasetFactory.Open(root, DataSplit.Train).Count);
        Assert.Equal(1, DatasetFactory.Open(root, DataSplit.Val).Count); // "test" stands in for "val"
    }

    [Fact]
    public void FactoryNamesPathAndFormatsWhenNothingFits()
    {
        string root = TempDir("nothing");
        File.WriteAllText(Path.Combine(root, "readme.txt"), "x");
        var e = Assert.Throws<InvalidDataException>(() => DatasetFactory.Open(root, DataSplit.Train));
        Assert.Contains(root, e.Message);
        Assert.Contains("ImageFolder", e.Message);
        Assert.Contains("IDX", e.Message);
        Assert.Contains("CIFAR-10", e.Message);
        var missing = Assert.Throws<DirectoryNotFoundException>(() => DatasetFactory.Open(Path.Combine(root, "nope"), DataSplit.Train));
        Assert.Contains("nope", missing.Message);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void ReadsCifarBinaryBatches(bool cifar100)
    {
        string root = TempDir("cifar");
        string dir = Path.Combine(root, cifar100 ? "cifar-100-binary" : "cifar-10-batches-bin");
        Directory.CreateDirectory(dir);
        int labelBytes = cifar100 ? 2 : 1;
        byte[] Records(int n, int first)
        {
            var bytes = new byte[n * (labelBytes + 3072)];
            for (int r = 0; r < n; r++)
            {
                int o = r * (labelBytes + 3072);
                bytes[o] = (byte)((first + r) % 10); // coarse label for CIFAR-100
                bytes[o + labelBytes - 1] = (byte)((first + r) % 10);
                for (int c = 0; c < 3; c++) bytes[o + labelBytes + c * 1024 + 33] = (byte)(10 * c + r + 1); // pixel (1, 1)
            }
            return bytes;
        }
        if (cifar100)
        {
            File.WriteAllBytes(Path.Combine(dir, "train.bin"), Records(4, 0));
            File.WriteAllBytes(Path.Combine(dir, "test.bin"), Records(2, 5));
        }
        else
        {
            for (int i = 1; i <= 5; i++) File.WriteAllBytes(Path.Combine(dir, $"data_batch_{i}.bin"), Records(2, i));
            File.WriteAllBytes(Path.Combine(dir, "test_batch.bin"), Records(2, 5));
        }
        var train = DatasetFactory.Open(root, DataSplit.Train);
        var test = DatasetFactory.Open(root, DataSplit.Val);
        Assert.Equal(cifar100 ? 4 : 10, train.Count);
        Assert.Equal(2, test.Count);
        Assert.Equal(6, test.Label(1));
        var img = train.Load(1);
        Assert.Equal((32, 32, 3), (img.Width, img.Height, img.Channels));
        Assert.Equal(new byte[] { 2, 12, 22 }, new[] { img.At(1, 1, 0), img.At(1, 1, 1), img.At(1, 1, 2) });
        Assert.Equal(cifar100 ? 100 : 10, train.ClassNames.Count);
        if (!cifar100) Assert.Equal("truck", train.ClassNames[9]);
        Assert.EndsWith("#1", train.ItemName(1));
    }

    [Fact]
    public void LabelSubsetsAreClassBalancedSeededAndRoundTripThroughFileLists()
    {
        var ds = new ImageFolderDataset(MakeFolder("labels", perClass: 20, classes: 3, size: 4));
        var tenPct = LabelSubsets.Fraction(ds, 0.10, seed: 1);
        Assert.Equal(6, tenPct.Length);
        Assert.All(Enumerable.Range(0, 3), c => Assert.Equal(2, tenPct.Count(i => ds.Label(i) == c)));
        Assert.Equal(tenPct, LabelSubsets.Fraction(ds, 0.10, seed: 1));
        Assert.NotEqual(tenPct, LabelSubsets.Fraction(ds, 0.10, seed: 2));
        var onePct = LabelSubsets.Fraction(ds, 0.01, seed: 1);
        Assert.Equal(3, onePct.Length); // at least one per class
        string list = Path.Combine(TempDir("subsetlist"), "10percent.txt");
        LabelSubsets.WriteFileList(ds, tenPct, list);
        Assert.Equal(tenPct, LabelSubsets.FromFileList(ds, list));
        var sub = new SubsetDataset(ds, tenPct);
        Assert.Equal(6, sub.Count);
        Assert.Equal(ds.Label(tenPct[5]), sub.Label(5));
        File.AppendAllLines(list, new[] { "n01440764_10026.JPEG" });
        Assert.Contains("n01440764_10026.JPEG", Assert.Throws<InvalidDataException>(() => LabelSubsets.FromFileList(ds, list)).Message);
    }
}
