using AttnDistill.Data;
using Xunit;
using static AttnDistill.Tests.Data.DataTestUtil;

namespace AttnDistill.Tests.Data;

public class DatasetInspectorTests
{
    [Fact]
    public void ReportsFormatCountsSizesAndUnreadableFiles()
    {
        string root = TempDir("inspect");
        for (int i = 0; i < 3; i++) WriteImage(Path.Combine(root, "train", "cat", $"{i}.png"), 10 + i, 8, i);
        WriteImage(Path.Combine(root, "train", "dog", "0.jpg"), 20, 6, 9, SkiaSharp.SKEncodedImageFormat.Jpeg);
        File.WriteAllBytes(Path.Combine(root, "train", "dog", "1.jpg"), Array.Empty<byte>());
        Directory.CreateDirectory(Path.Combine(root, "train", "emu"));
        WriteImage(Path.Combine(root, "val", "cat", "0.png"), 4, 4, 1);

        var report = DatasetInspector.Inspect(root);
        Assert.Equal(DataFormat.ImageFolder, report.Format);
        Assert.Equal(2, report.Splits.Count);
        var train = report.Splits[0];
        Assert.Equal(DataSplit.Train, train.Split);
        Assert.Equal(5, train.Count);
        Assert.Equal(new[] { "cat", "dog", "emu" }, train.ClassNames);
        Assert.Equal(new[] { 3, 2, 0 }, train.CountsPerClass);
        Assert.Equal(1, train.UnreadableCount);
        Assert.Equal(4, train.ReadableCount);
        Assert.EndsWith("1.jpg", Assert.Single(train.FirstUnreadable));
        Assert.Equal(new ImageSizeStats(10, 20, 6, 8, 13.25, 7.5, 4), train.Sizes);
        Assert.Equal(1, report.Splits[1].Count);

        // The CLI's table: readable images and unreadable files in separate columns.
        var (code, output) = TestSupport.CliProcess.Attndistill("data", "inspect", "--data", root);
        Assert.True(code == 0, output);
        Assert.Contains("readable", output);
        var cells = output.Split('\n').First(l => l.StartsWith("│ Train ")).Split('│').Select(c => c.Trim()).Where(c => c.Length > 0).ToList();
        Assert.Equal("4", cells[2]);        // split, source, readable, classes, width, height, unreadable
        Assert.Equal("1", cells[^1]);

        // A truncated file passes a header read but not a full decode.
        var jpeg = File.ReadAllBytes(FixtureImage("big.jpg"));
        File.WriteAllBytes(Path.Combine(root, "val", "cat", "1.jpg"), jpeg.AsSpan(0, jpeg.Length / 2).ToArray());
        Assert.Equal(0, DatasetInspector.Inspect(root).Splits[1].UnreadableCount);
        Assert.Equal(1, DatasetInspector.Inspect(root, new InspectOptions { FullDecode = true }).Splits[1].UnreadableCount);
    }

    [Fact]
    public void InspectsIdx()
    {
        string dir = TempDir("inspectidx");
        IdxTests.WriteIdx(dir, "train", 20, 7);
        var report = DatasetInspector.Inspect(dir);
        Assert.Equal(DataFormat.Idx, report.Format);
        var train = Assert.Single(report.Splits); // no t10k files
        Assert.Equal(20, train.Count);
        Assert.Equal(new ImageSizeStats(7, 7, 7, 7, 7, 7, 20), train.Sizes);
        Assert.All(train.CountsPerClass, c => Assert.Equal(2, c));
    }
}
