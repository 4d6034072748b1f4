using System.Diagnostics;
using AttnDistill.Checkpoints;
using AttnDistill.Models;
using AttnDistill.Training;
using TorchSharp;
using Xunit;
using Xunit.Abstractions;

namespace AttnDistill.Tests.Distributed;

/// <summary>
/// `mpirun -np 2 attndistill distill` as a user runs it: (c) only rank 0 writes files and (d) a
/// run killed and resumed ends with the same student as an uninterrupted one. Each rank gets its
/// own working directory and the same relative --out (mpirun's --wdir per app context), so a
/// file written by rank 1 would land in a folder of its own: that folder must stay empty.
/// </summary>
public class CliDataParallelTests(ITestOutputHelper output)
{
    static readonly string Cli = Path.Combine(AppContext.BaseDirectory, "attndistill.dll");

    static string Teacher(string dir)
    {
        var cfg = new VitConfig { ImageSize = 32, PatchSize = 8, EmbedDim = 64, Depth = 2, NumHeads = 4 };
        torch.manual_seed(11);
        using var t = new VisionTransformer(cfg);
        string path = Path.Combine(dir, "teacher.safetensors");
        BackboneExport.SaveSafetensors(t, path, cfg);
        return path;
    }

    /// <summary>Two app contexts, one per rank, each in its own working directory.</summary>
    static string TwoRanks(string root, string tag, string data, string teacher, bool resume, int epochs = Epochs)
    {
        string args = $"\"{Cli}\" distill --data \"{data}\" --teacher \"{teacher}\" --image-size 32 --student-patch 8 --student-dim 32 --student-depth 2 --student-heads 2 "
            + $"--proj-layers 1 --epochs {epochs} --warmup-epochs 1 --batch-size 16 --lr 1e-3 --workers 1 --log-every 5 --out run" + (resume ? " --resume" : "");
        string Rank(int r)
        {
            string wdir = Path.Combine(root, $"{tag}-rank{r}");
            Directory.CreateDirectory(wdir);
            return $"-np 1 --wdir \"{wdir}\" dotnet {args}";
        }
        return $"{Rank(0)} : {Rank(1)}";
    }

    /// <summary>
    /// Enough epochs that a run killed at its first checkpoint still has most of its work ahead,
    /// even on a fast machine where one epoch takes a few tens of milliseconds.
    /// </summary>
    const int Epochs = 10;

    [SkippableFact]
    public void OnlyRankZeroWritesAndAKilledRunResumesToTheSameStudent()
    {
        Skip.If(Mpirun.Path is null, Mpirun.SkipReason);
        string root = Directory.CreateTempSubdirectory("mpi-cli").FullName;
        string data = SyntheticCifar.Write(Path.Combine(root, "data"), trainImages: 320);
        string teacher = Teacher(root);
        var timeout = TimeSpan.FromMinutes(3);
        var watch = Stopwatch.StartNew();

        var (code, log) = Mpirun.Run(TwoRanks(root, "straight", data, teacher, resume: false), timeout);
        Assert.True(code == 0, log);
        output.WriteLine($"uninterrupted 2-rank run: {watch.Elapsed.TotalSeconds:F1} s");
        string straight = Path.Combine(root, "straight-rank0", "run");
        foreach (var f in new[] { "config.yaml", "log.txt", "metrics.json", "backbone.pth", "backbone.safetensors", $"checkpoint-{Epochs:D4}.ckpt" })
            Assert.True(File.Exists(Path.Combine(straight, f)), $"rank 0 did not write {f}");
        Assert.NotEmpty(Directory.EnumerateFiles(Path.Combine(straight, "tensorboard")));
        Assert.Empty(Directory.EnumerateFileSystemEntries(Path.Combine(root, "straight-rank1")));   // (c)
        // Logs are rank 0's alone: one epoch line per epoch.
        Assert.Equal(Epochs, File.ReadLines(Path.Combine(straight, "log.txt")).Count(l => l.Contains("train_loss")));

        // (d) Kill the job once the first epoch is checkpointed: SIGKILL to mpirun and every rank at
        // once, a crash with no chance to stop gracefully. (SIGTERM to mpirun was tried first: Open MPI
        // forwards it with a delay that outlasts the whole run on a fast machine.)
        string killed = Path.Combine(root, "killed-rank0", "run");
        watch.Restart();
        using (var job = new Mpirun.Job(TwoRanks(root, "killed", data, teacher, resume: false)))
        {
            // (Only the 2 newest checkpoints are kept: wait for any.)
            while (!job.HasExited && CheckpointFiles.List(killed).Count == 0 && watch.Elapsed < timeout) Thread.Sleep(10);
            job.KillTree();
            job.Wait(timeout);
            output.WriteLine($"killed after {watch.Elapsed.TotalSeconds:F1} s; checkpoints: {string.Join(", ", CheckpointFiles.List(killed).Select(Path.GetFileName))}");
        }
        Assert.False(File.Exists(Path.Combine(killed, $"checkpoint-{Epochs:D4}.ckpt")), "the run ended before it could be killed: make it longer");
        Assert.NotEmpty(CheckpointFiles.List(killed));

        (code, log) = Mpirun.Run(TwoRanks(root, "killed", data, teacher, resume: true), timeout);
        Assert.True(code == 0, log);
        Assert.Contains("resumed from", log);
        Assert.Empty(Directory.EnumerateFileSystemEntries(Path.Combine(root, "killed-rank1")));

        var a = SafetensorsFile.Read(Path.Combine(straight, "backbone.safetensors")).Tensors;
        var b = SafetensorsFile.Read(Path.Combine(killed, "backbone.safetensors")).Tensors;
        Assert.Equal(a.Keys.Order(), b.Keys.Order());
        foreach (var (k, v) in a)
            Assert.True(v.equal(b[k]).all().item<bool>(), $"{k} differs between the uninterrupted and the killed-then-resumed run");
    }

    /// <summary>A crafted (checksummed) checkpoint whose RNG state has the wrong size: under mpirun too, one refusal on every rank, no native abort.</summary>
    [SkippableFact]
    public void ACraftedRngStateIsRefusedByEveryRankWithoutANativeAbort()
    {
        Skip.If(Mpirun.Path is null, Mpirun.SkipReason);
        string root = Directory.CreateTempSubdirectory("mpi-crafted").FullName;
        string data = SyntheticCifar.Write(Path.Combine(root, "data"), trainImages: 64);
        string teacher = Teacher(root);
        var timeout = TimeSpan.FromMinutes(3);
        var (code, log) = Mpirun.Run(TwoRanks(root, "run", data, teacher, resume: false, epochs: 1), timeout);
        Assert.True(code == 0, log);
        string dir = Path.Combine(root, "run-rank0", "run");
        AttnDistill.Tests.Reliability.HostileRunTests.Craft(Path.Combine(dir, "checkpoint-0001.ckpt"), Path.Combine(dir, "checkpoint-0002.ckpt"),
            (t, _) => t["rng/torch_cpu"] = torch.zeros(10, torch.ScalarType.Byte));
        (code, log) = Mpirun.Run(TwoRanks(root, "run", data, teacher, resume: true, epochs: 3), timeout);
        output.WriteLine(log);
        Assert.NotEqual(0, code);
        Assert.Contains("RNG state", log);
        Assert.Contains("checkpoint-0002.ckpt", log);
        Assert.DoesNotContain("terminate called", log);
    }
}
