using AttnDistill.Data;
using AttnDistill.Runs;
using Xunit;

namespace AttnDistill.Tests.Reliability;

/// <summary>Two runs on one --out (the run lock), and the decode-budget and image-format switches, through the library API.</summary>
public class RunFolderLockTests(BadConfigFixture f) : IClassFixture<BadConfigFixture>
{
    [Fact]
    public void Case5_ASecondRunOnAHeldFolderIsRefusedNamingTheHoldersPid()
    {
        string dir = Path.Combine(Directory.CreateTempSubdirectory("lock").FullName, "run");
        using var held = RunFolderLock.Acquire(dir);
        var r = BadConfigTests.RunCli(new[]
        {
            "distill", "--data", f.Data, "--teacher", f.Teacher, "--student", "vit_tiny_patch16", "--student-patch", "7", "--student-depth", "1",
            "--student-heads", "2", "--student-dim", "32", "--image-size", "28", "--proj-layers", "1", "--epochs", "1", "--warmup-epochs", "0",
            "--batch-size", "8", "--workers", "1", "--out", dir,
        });
        Assert.True(r.Code == 2, r.Output);
        var error = Assert.Single(r.Output.Split('\n'), l => l.StartsWith("error:", StringComparison.Ordinal));
        Assert.Contains($"PID {Environment.ProcessId}", error);
        Assert.False(File.Exists(Path.Combine(dir, "log.txt")));
        Assert.False(File.Exists(Path.Combine(dir, "config.yaml")));
    }

    [Fact]
    public void Case5_AStaleLockOfADeadProcessIsTakenOverWithAWarning()
    {
        string dir = Directory.CreateTempSubdirectory("lock-stale").FullName;
        File.WriteAllText(Path.Combine(dir, RunFolderLock.FileName), "2147483000 deadhost 2026-01-01T00:00:00Z\n");
        var warnings = new List<string>();
        using (var l = RunFolderLock.Acquire(dir, warnings.Add))
        {
            var w = Assert.Single(warnings);
            Assert.Contains("2147483000", w);
            Assert.Contains("stale", w);
        }
        // Released cleanly: empty, so the next run takes it without a warning.
        warnings.Clear();
        using (RunFolderLock.Acquire(dir, warnings.Add)) Assert.Empty(warnings);
    }

    [Fact]
    public void Case5_TheProcessKeepsItsOwnLockAcrossCommands()
    {
        string dir = Directory.CreateTempSubdirectory("lock-own").FullName;
        var a = RunFolderLock.HoldForProcess(dir);
        Assert.Same(a, RunFolderLock.HoldForProcess(dir));
        Assert.Throws<IOException>(() => RunFolderLock.Acquire(dir));
        a.Dispose();
        using var b = RunFolderLock.Acquire(dir);
    }

    [Fact]
    public void Case2_TheBudgetFollowsPilAndTheFlagRaisesIt()
    {
        Assert.Equal(89_478_485, ImageDecoder.DefaultMaxImagePixels);
        // Just over 2 x the default is refused; the check comes before any pixel memory is taken.
        Assert.Throws<ImageTooLargeException>(() => ImageDecoder.CheckPixelBudget(13_380, 13_380, "x.png"));
        ImageDecoder.CheckPixelBudget(13_000, 13_000, "x.png");   // 169 Mpx < 179 Mpx: PIL only warns
        var r = BadConfigTests.RunCli(new[] { "data", "inspect", "--data", f.Data, "--max-image-pixels", "-1" });
        Assert.Equal(2, r.Code);
        Assert.Contains("--max-image-pixels", r.Output);
        Assert.Contains("--max-image-pixels", BadConfigTests.RunCli(new[] { "distill", "--help" }).Output);
        Assert.Contains("--max-checkpoint-inflate", BadConfigTests.RunCli(new[] { "knn", "--help" }).Output);
    }

    [Fact]
    public void Case13_GifFilesAreCountedByInspectNotSilentlyDropped()
    {
        string data = HostileFiles.Folder(root => File.WriteAllBytes(Path.Combine(root, "train", "a", "anim.gif"), "GIF89a"u8.ToArray()));
        var report = DatasetInspector.Inspect(data);
        Assert.Equal(1, report.Splits.Single(s => s.Split == DataSplit.Train).IgnoredImageFiles);
        var r = BadConfigTests.RunCli(new[] { "data", "inspect", "--data", data });
        Assert.Contains(".gif", r.Output);
    }
}
