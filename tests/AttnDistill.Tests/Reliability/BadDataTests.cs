using System.Collections.Concurrent;
using AttnDistill.Data;
using AttnDistill.Data.Transforms;
using AttnDistill.Distillation;
using AttnDistill.Models;
using AttnDistill.Training;
using AttnDistill.Runs;
using Xunit;
using static TorchSharp.torch;
using DataLoader = AttnDistill.Data.DataLoader;

namespace AttnDistill.Tests.Reliability;

/// <summary>
/// A folder as real downloads look: a truncated JPEG, a PNG with alpha, a CMYK JPEG, gray images,
/// a 1x1 image, a text file named .jpg, an empty .jpg, a PNG named .jpg, and an empty class folder.
/// Readable ones become RGB; unreadable ones are skipped, counted and named once.
/// </summary>
public class BadDataTests
{
    static string Image(string name) => Path.Combine(AppContext.BaseDirectory, "fixtures", "data", "images", name);

    static readonly string[] Unreadable = { "broken/truncated.jpg", "broken/notes.jpg", "broken/empty.jpg" };

    /// <summary>root/train/{good,odd,broken,empty}/...: 7 readable images, 3 unreadable files, one empty class.</summary>
    static string MixedFolder()
    {
        string root = Directory.CreateTempSubdirectory("mixed").FullName;
        string train = Path.Combine(root, "train");
        void Put(string rel, byte[] bytes)
        {
            string p = Path.Combine(train, rel);
            Directory.CreateDirectory(Path.GetDirectoryName(p)!);
            File.WriteAllBytes(p, bytes);
        }
        Put("good/cat.jpg", File.ReadAllBytes(Image("cifar_cat.jpg")));
        Put("good/ship.jpg", File.ReadAllBytes(Image("cifar_ship.jpg")));
        Put("good/png_named_jpg.jpg", File.ReadAllBytes(Image("gray.png")));  // content decides, not the name
        Put("odd/alpha.png", File.ReadAllBytes(Image("alpha.png")));
        Put("odd/cmyk.jpg", File.ReadAllBytes(Image("cmyk.jpg")));
        Put("odd/gray.jpg", File.ReadAllBytes(Image("gray.jpg")));
        Put("odd/one_pixel.png", File.ReadAllBytes(Image("one.png")));
        var frog = File.ReadAllBytes(Image("cifar_frog.jpg"));
        Put("broken/truncated.jpg", frog[..(frog.Length / 2)]);
        Put("broken/notes.jpg", "this is a text file, not a JPEG\n"u8.ToArray());
        Put("broken/empty.jpg", Array.Empty<byte>());
        Directory.CreateDirectory(Path.Combine(train, "empty"));
        Directory.CreateDirectory(Path.Combine(root, "test", "good"));
        File.Copy(Image("cifar_cat.jpg"), Path.Combine(root, "test", "good", "cat.jpg"));
        return root;
    }

    [Fact]
    public void ReadableFilesBecomeRgbAndUnreadableOnesAreSkippedCountedAndNamedOnce()
    {
        string root = MixedFolder();
        var dataset = DatasetFactory.Open(root, DataSplit.Train);
        Assert.Equal(new[] { "broken", "empty", "good", "odd" }, dataset.ClassNames);
        Assert.Equal(10, dataset.Count);

        // Each readable file decodes to 3 channels, whatever it was stored as.
        foreach (int i in Enumerable.Range(0, dataset.Count).Where(i => !Unreadable.Any(u => dataset.ItemName(i).EndsWith(u.Replace('/', Path.DirectorySeparatorChar)))))
        {
            var img = dataset.Load(i);
            Assert.Equal(3, img.Channels);
            Assert.Equal(img.Width * img.Height * 3, img.Pixels.Length);
        }

        var logs = new ConcurrentQueue<string>();
        var loader = new DataLoader(dataset, TransformPresets.Train(16, 0.2),
            new DataLoaderOptions { BatchSize = 4, Seed = 1, DropLast = false, Workers = 2, Log = logs.Enqueue });
        int batches = 0, images = 0;
        for (int epoch = 0; epoch < 3; epoch++)
            foreach (var batch in loader.Epoch(epoch))
            {
                batches++;
                images += batch.Count;
                Assert.Equal(new long[] { batch.Count, 3, 16, 16 }, batch.Images.shape);
                Assert.True(batch.Images.isfinite().all().item<bool>());
                // Replacements come from readable items only.
                foreach (int used in batch.Indices) Assert.DoesNotContain(Unreadable, u => dataset.ItemName(used).EndsWith(u.Replace('/', Path.DirectorySeparatorChar)));
            }
        Assert.Equal(3 * 10, images);   // batches keep their size: unreadable items are replaced
        Assert.Equal(3, loader.UnreadableCount);
        Assert.Equal(3, logs.Count);    // named once, not once per epoch or per worker
        foreach (string u in Unreadable)
            Assert.Single(logs, l => l.Contains(u.Replace('/', Path.DirectorySeparatorChar)));
        Assert.Equal(Unreadable.Select(u => Path.Combine(root, "train", u)).Order(), loader.UnreadableItems.Order());
    }

    [Fact]
    public void ADistillationOnTheMixedFolderRunsAndRecordsTheSkippedFiles()
    {
        string root = MixedFolder();
        string dir = Directory.CreateTempSubdirectory("mixed-run").FullName;
        var logs = new ConcurrentQueue<string>();
        var cfg = new DistillJobConfig
        {
            DataRoot = root, TeacherPath = KillHarness.MakeTeacher(dir),
            Student = new VitConfig { ImageSize = 28, PatchSize = 7, EmbedDim = 32, Depth = 1, NumHeads = 2 }, ProjectorLayers = 1,
            Trainer = new TrainerOptions { Epochs = 2, WarmupEpochs = 0, BatchSize = 4, Lr = 1e-3, Seed = 0 },
            Workers = 1,
        };
        var result = DistillJob.Run(cfg, RunContext.Cpu(Path.Combine(dir, "run"), logs.Enqueue) with { ConfigText = "test" });
        Assert.Equal(2, result.Train.EpochsDone);
        Assert.Equal(3, logs.Count(l => l.Contains("unreadable image skipped")));
        var metrics = MetricsFile.Read(Path.Combine(dir, "run", "metrics.json"));
        Assert.Equal(3, (int)metrics["distill"]!["unreadable_images"]!);
    }
}
