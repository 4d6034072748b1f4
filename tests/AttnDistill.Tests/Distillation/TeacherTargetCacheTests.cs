using System.Text.Json;
using AttnDistill.Checkpoints;
using AttnDistill.Distillation;
using AttnDistill.Models;
using AttnDistill.Runs;
using AttnDistill.Tests.TestSupport;
using AttnDistill.Tests.Export;
using AttnDistill.Training;
using Xunit;

namespace AttnDistill.Tests.Distillation;

/// <summary>
/// The teacher-target cache: a run that reads it computes bit for bit what a run with the teacher
/// online computes (fp32), a run whose stream or teacher differs is refused with the first
/// mismatch, and the loss options stay free.
/// </summary>
public class TeacherTargetCacheTests
{
    static readonly VitConfig TeacherCfg = new() { ImageSize = 16, PatchSize = 4, EmbedDim = 32, Depth = 2, NumHeads = 4 };
    static readonly VitConfig StudentCfg = new() { ImageSize = 16, PatchSize = 8, EmbedDim = 16, Depth = 2, NumHeads = 2 };

    static string Teacher(int seed = 11)
    {
        TorchSharp.torch.manual_seed(seed);
        using var t = new VisionTransformer(TeacherCfg);
        string path = Path.Combine(Directory.CreateTempSubdirectory("cache-teacher").FullName, "teacher.safetensors");
        BackboneExport.SaveSafetensors(t, path, TeacherCfg);
        return path;
    }

    static DistillJobConfig Config(string data, string teacher, string? cache, int seed = 0, double lambda = 0.1, string dtype = "float32") => new()
    {
        DataRoot = data, TeacherPath = teacher, Student = StudentCfg, ProjectorLayers = 2,
        Loss = new DistillLossOptions { WeightAttn = lambda, AttnTemperature = 10 },
        Trainer = new TrainerOptions { Epochs = 2, WarmupEpochs = 1, BatchSize = 8, Lr = 1e-3, LogEverySteps = 1, Seed = seed },
        Workers = 0, TeacherCacheDir = cache, TeacherCacheDtype = dtype,
    };

    static (string Dir, List<string> Log) Run(DistillJobConfig cfg)
    {
        string dir = Directory.CreateTempSubdirectory("cache-run").FullName;
        var log = new List<string>();
        DistillJob.Run(cfg, RunContext.Cpu(dir) with { ConfigText = "test: true", Log = log.Add });
        return (dir, log);
    }

    /// <summary>Every logged step's losses, exactly as written.</summary>
    static List<string> Losses(string runDir) =>
        File.ReadLines(Path.Combine(runDir, "log.txt"))
            .Select(l => JsonDocument.Parse(l).RootElement)
            .Where(e => e.TryGetProperty("batch", out _))
            .Select(e => $"{e.GetProperty("epoch")}/{e.GetProperty("batch")}: {e.GetProperty("loss").GetRawText()} {e.GetProperty("loss_attn").GetRawText()}")
            .ToList();

    [Fact]
    public void AReadRunEqualsTheOnlineRunBitForBitAndSkipsTheTeacher()
    {
        using var thread = new SingleTorchThread();
        string data = SyntheticImageFolder.Write(8, 2);
        string teacher = Teacher();
        string cache = Path.Combine(Directory.CreateTempSubdirectory("cache").FullName, "targets");

        var (online, _) = Run(Config(data, teacher, null));
        var (filling, fillLog) = Run(Config(data, teacher, cache));
        var (reading, readLog) = Run(Config(data, teacher, cache));

        Assert.Contains(fillLog, l => l.Contains("empty: this run fills it"));
        Assert.Contains(fillLog, l => l.StartsWith("teacher cache: epoch 2 filled"));
        Assert.Contains(readLog, l => l.Contains("epochs 1, 2 are read"));
        Assert.DoesNotContain(readLog, l => l.StartsWith("teacher cache: epoch"));
        Assert.True(File.Exists(Path.Combine(cache, "epoch-0001.bin")) && File.Exists(Path.Combine(cache, "epoch-0002.bin")));

        var expected = Losses(online);
        Assert.NotEmpty(expected);
        Assert.Equal(expected, Losses(filling));
        Assert.Equal(expected, Losses(reading));
        Assert.Equal(File.ReadAllBytes(Path.Combine(online, "backbone.safetensors")), File.ReadAllBytes(Path.Combine(reading, "backbone.safetensors")));

        using var metrics = JsonDocument.Parse(File.ReadAllText(Path.Combine(reading, "metrics.json")));
        var section = metrics.RootElement.GetProperty("teacher_cache");
        Assert.Equal(0, section.GetProperty("epochs_filled_by_this_run").GetArrayLength());
        // 32 images: a float64 fingerprint, 32 feature values and 4 heads x 17 tokens per image, in float32.
        Assert.Equal(32L * (8 + 4 * (32 + 4 * 17)), section.GetProperty("bytes_per_epoch").GetInt64());

        // The loss options act on the cached rows: another lambda reads the same cache.
        var (_, lambdaLog) = Run(Config(data, teacher, cache, lambda: 0.3));
        Assert.Contains(lambdaLog, l => l.Contains("epochs 1, 2 are read"));

        // The read run really trains on the cached rows: one changed feature value changes its losses.
        using (var f = new FileStream(Path.Combine(cache, "epoch-0001.bin"), FileMode.Open, FileAccess.ReadWrite))
        {
            f.Seek(8, SeekOrigin.Begin);
            f.Write(BitConverter.GetBytes(5f));
        }
        var (tampered, _) = Run(Config(data, teacher, cache));
        Assert.NotEqual(expected, Losses(tampered));
    }

    [Fact]
    public void ACacheFilledAheadServesADistillRunThatEqualsTheOnlineRun()
    {
        using var thread = new SingleTorchThread();
        string data = SyntheticImageFolder.Write(4, 1);
        string teacher = Teacher();
        string cache = Path.Combine(Directory.CreateTempSubdirectory("cache").FullName, "targets");
        var fill = DistillJob.FillTeacherCache(Config(data, teacher, cache), RunContext.Cpu(Directory.CreateTempSubdirectory("cache-fill").FullName));
        Assert.Equal(new[] { 0, 1 }, fill.Filled);
        Assert.Empty(DistillJob.FillTeacherCache(Config(data, teacher, cache), RunContext.Cpu(Directory.CreateTempSubdirectory("cache-fill").FullName)).Filled);
        var (online, _) = Run(Config(data, teacher, null));
        var (reading, readLog) = Run(Config(data, teacher, cache));
        Assert.Contains(readLog, l => l.Contains("epochs 1, 2 are read"));
        Assert.Equal(Losses(online), Losses(reading));
    }

    [Fact]
    public void TheFeatureOnlyBaselinesCacheServesAttentionRunsBitForBit()
    {
        // The study fills each seed's cache with its lambda-0 row first; every attention row of the
        // same stream must then read it, and compute what the online teacher gives.
        using var thread = new SingleTorchThread();
        string data = SyntheticImageFolder.Write(4, 1);
        string teacher = Teacher();
        string cache = Path.Combine(Directory.CreateTempSubdirectory("cache").FullName, "targets");
        var (_, baselineLog) = Run(Config(data, teacher, cache, lambda: 0));
        Assert.Contains(baselineLog, l => l.StartsWith("teacher cache: epoch 2 filled"));

        var (online, _) = Run(Config(data, teacher, null, lambda: 0.1));
        var (reading, readLog) = Run(Config(data, teacher, cache, lambda: 0.1));
        Assert.Contains(readLog, l => l.Contains("epochs 1, 2 are read"));
        var expected = Losses(online);
        Assert.Contains(expected, l => !l.EndsWith(" 0"));   // the attention term is there
        Assert.Equal(expected, Losses(reading));

        var (_, compressLog) = Run(Config(data, teacher, cache) with { Method = DistillationMethod.CompRess });
        Assert.Contains(compressLog, l => l.Contains("epochs 1, 2 are read"));
    }

    [Fact]
    public void AnotherSeedTeacherOrDtypeIsRefusedNamingTheFirstMismatch()
    {
        using var thread = new SingleTorchThread();
        string data = SyntheticImageFolder.Write(4, 1);
        string teacher = Teacher();
        string cache = Path.Combine(Directory.CreateTempSubdirectory("cache").FullName, "targets");
        var cfg = Config(data, teacher, cache) with { Trainer = Config(data, teacher, cache).Trainer with { Epochs = 1, WarmupEpochs = 0 } };
        Run(cfg);

        var seed = Assert.Throws<ArgumentException>(() => Run(cfg with { Trainer = cfg.Trainer with { Seed = 1 } }));
        Assert.Contains("seed: the cache has 0, this run 1", seed.Message);
        Assert.Contains("--teacher-cache", seed.Message);
        var other = Assert.Throws<ArgumentException>(() => Run(cfg with { TeacherPath = Teacher(seed: 12) }));
        Assert.Contains("teacher (SHA-256 of the loaded teacher)", other.Message);
        var dtype = Assert.Throws<ArgumentException>(() => Run(cfg with { TeacherCacheDtype = "float16" }));
        Assert.Contains("dtype: the cache has float32, this run float16", dtype.Message);
    }

    [Fact]
    public void Float16HalvesTheTargetsAndStaysCloseToTheOnlineLoss()
    {
        using var thread = new SingleTorchThread();
        string data = SyntheticImageFolder.Write(4, 1);
        string teacher = Teacher();
        string cache = Path.Combine(Directory.CreateTempSubdirectory("cache").FullName, "targets");
        var (online, _) = Run(Config(data, teacher, null));
        Run(Config(data, teacher, cache, dtype: "float16"));
        var (reading, readLog) = Run(Config(data, teacher, cache, dtype: "float16"));
        Assert.Contains(readLog, l => l.Contains("epochs 1, 2 are read"));
        Assert.Equal(16L * (8 + 2 * (32 + 4 * 17)), new FileInfo(Path.Combine(cache, "epoch-0001.bin")).Length);
        double Last(string run) => File.ReadLines(Path.Combine(run, "log.txt")).Select(l => JsonDocument.Parse(l).RootElement)
            .Where(e => e.TryGetProperty("batch", out _)).Select(e => e.GetProperty("loss").GetDouble()).Last();
        Assert.InRange(Math.Abs(Last(reading) - Last(online)), 0, 1e-2 * Math.Abs(Last(online)));
    }
}
