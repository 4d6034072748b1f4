using AttnDistill.Data;
using AttnDistill.Data.Transforms;
using Xunit;
using Xunit.Abstractions;
using DataLoader = AttnDistill.Data.DataLoader;

namespace AttnDistill.Tests.Reliability;

/// <summary>
/// Short runs of the fuzzers bench/soak runs at 10,000 cases (`fuzz`, `fuzz-images`,
/// `fuzz-recipes`), deterministic by seed: ATTNDISTILL_FUZZ_CASES sets the case count.
/// </summary>
public class FuzzTests(ITestOutputHelper output)
{
    static int Cases(int fallback) => int.TryParse(Environment.GetEnvironmentVariable("ATTNDISTILL_FUZZ_CASES"), out int n) ? n : fallback;
    static string FixtureDir => Path.Combine(AppContext.BaseDirectory, "fixtures");

    void AssertClean(FuzzReport report)
    {
        output.WriteLine(report.ToString());
        Assert.True(report.Failures.Count == 0, string.Join("\n", report.Failures.Take(20)));
    }

    [Fact]
    public void CraftedCheckpointsResumeOrAreRefusedNamingTheFile()
    {
        string dir = Directory.CreateTempSubdirectory("fuzz-resume").FullName;
        using var crafted = new CraftedCheckpoints(ResumeProbe.WriteSeed(Path.Combine(dir, "seed-run")));
        var seeds = CheckpointFuzzer.ExtendedSeeds(FixtureDir, CheckpointFuzzer.TrainingCheckpointSeed(dir), crafted).Where(s => s.Name == "resume").ToList();
        var report = CheckpointFuzzer.Run(seeds, Cases(200), randomSeed: 5, Path.Combine(dir, "cases"), TimeSpan.FromSeconds(20));
        AssertClean(report);
        Assert.True(report.Loaded > 0 && report.Refused > 0, report.ToString());
    }

    [Fact]
    public void StructurallyLyingCheckpointsLoadOrAreRefusedNamingTheFile()
    {
        string dir = Directory.CreateTempSubdirectory("fuzz-structure").FullName;
        var seeds = CheckpointFuzzer.StandardSeeds(FixtureDir, CheckpointFuzzer.TrainingCheckpointSeed(dir));
        var report = CheckpointFuzzer.Run(seeds, Cases(300), randomSeed: 23, Path.Combine(dir, "cases"), TimeSpan.FromSeconds(20));
        AssertClean(report);
        Assert.Contains(report.Mutations.Keys, k => k.StartsWith("zip-", StringComparison.Ordinal));
        Assert.Contains(report.Mutations.Keys, k => k.StartsWith("st-", StringComparison.Ordinal));
        Assert.True(report.PeakRssGrowthBytes < 512L << 20, report.ToString());
    }

    [Fact]
    public void ImagesWithLyingHeadersDecodeWithinTheBudgetOrAreRefusedNamingTheFile()
    {
        string dir = Directory.CreateTempSubdirectory("fuzz-images").FullName;
        var report = ImageFuzzer.Run(Cases(400), randomSeed: 3, dir, pixelBudget: 1 << 20, TimeSpan.FromSeconds(20));
        AssertClean(report);
        Assert.True(report.Loaded > 0 && report.Refused > 0, report.ToString());
        Assert.True(report.PeakRssGrowthBytes < 256L << 20, report.ToString());
    }

    [Fact]
    public void FuzzedImagesInAFolderAreCountedAndNamedByTheLoader()
    {
        // The same cases through an ImageFolder and the data loader: every refused file counted once and named.
        string root = Directory.CreateTempSubdirectory("fuzz-folder").FullName;
        var seeds = ImageSeeds.All();
        var rng = new Random(8);
        var refused = new List<string>();
        for (int i = 0; i < 36; i++)
        {
            var (name, ext, bytes) = seeds[i % seeds.Count];
            if (ext == ".gif") ext = ".png";   // GIF is not listed by an ImageFolder (as torchvision); its bytes are still decoded
            string path = Path.Combine(root, "train", $"c{i % 2}", $"f{i:D3}{ext}");
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            File.WriteAllBytes(path, i < 2 ? bytes : ImageFuzzer.Mutate(name, bytes, rng, 1 << 20).Bytes);
            try { ImageDecoder.DecodeFile(path); }
            // A header over the budget stops a run by design (HostileInputTests): the valid image instead.
            catch (ImageTooLargeException) { File.WriteAllBytes(path, bytes); }
            catch (Exception e) when (e is InvalidDataException or IOException) { refused.Add(path); }
        }
        var ds = new ImageFolderDataset(Path.Combine(root, "train"));
        var loader = new DataLoader(ds, TransformPresets.Eval(16), new DataLoaderOptions { BatchSize = 6, Shuffle = false, Workers = 0 });
        foreach (var b in loader.Epoch(0)) b.Dispose();
        output.WriteLine($"{refused.Count} of 36 unreadable");
        Assert.Equal(refused.Count, loader.UnreadableCount);
        Assert.Equal(refused.Order(StringComparer.Ordinal), loader.UnreadableItems.Order(StringComparer.Ordinal));
    }

    [Fact]
    public void HostileRecipesGiveOneBoundedLineOrParse()
    {
        string dir = Directory.CreateTempSubdirectory("fuzz-recipes").FullName;
        string teacher = KillHarness.MakeTeacher(dir);
        var report = RecipeFuzzer.Run(Cases(300), randomSeed: 9, dir, teacher, InProcessCli.Run, TimeSpan.FromSeconds(30));
        AssertClean(report);
        Assert.True(report.Loaded > 0 && report.Refused > 0, report.ToString());
    }
}
