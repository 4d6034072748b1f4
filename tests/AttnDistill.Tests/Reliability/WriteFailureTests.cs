using AttnDistill.Checkpoints;
using AttnDistill.Data;
using AttnDistill.Data.Transforms;
using AttnDistill.Tests.TestSupport;
using AttnDistill.Tests.Training;
using AttnDistill.Runs;
using AttnDistill.Training;
using Xunit;
using DataLoader = AttnDistill.Data.DataLoader;

namespace AttnDistill.Tests.Reliability;

/// <summary>Write errors injected through <see cref="AtomicFile.WrapTempStream"/>: the disk fills up while a checkpoint is written.</summary>
public class WriteFailureTests
{
    /// <summary>Sends every write to /dev/full, so the kernel itself answers ENOSPC ("No space left on device").</summary>
    sealed class DevFullStream : Stream
    {
        readonly FileStream _full = new("/dev/full", FileMode.Open, FileAccess.Write, FileShare.ReadWrite, bufferSize: 0);
        public override void Write(byte[] buffer, int offset, int count) => _full.Write(buffer, offset, count);
        public override void Write(ReadOnlySpan<byte> buffer) => _full.Write(buffer);
        public override void Flush() => _full.Flush();
        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => 0;
        public override long Position { get => 0; set => throw new NotSupportedException(); }
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        protected override void Dispose(bool disposing)
        {
            if (disposing) _full.Dispose();
            base.Dispose(disposing);
        }
    }

    static T WithFailingWrites<T>(Func<string, bool> failFor, Func<T> body)
    {
        AtomicFile.WrapTempStream = (tmp, fs) => failFor(tmp) ? new DevFullStream() : fs;
        try { return body(); }
        finally { AtomicFile.WrapTempStream = null; }
    }

    [SkippableFact]
    public void DiskFullDuringASaveKeepsThePreviousCheckpointAndNamesPathAndReason()
    {
        Skip.IfNot(File.Exists("/dev/full"), "needs /dev/full");
        string dir = Directory.CreateTempSubdirectory("diskfull").FullName;
        string path = Path.Combine(dir, "checkpoint-0001.ckpt");
        string seed = CheckpointFuzzer.TrainingCheckpointSeed(dir);
        File.Copy(seed, path);
        byte[] before = File.ReadAllBytes(path);

        using var ckpt = TrainingCheckpoint.Load(seed);
        var ex = Assert.Throws<IOException>(() => WithFailingWrites(_ => true, () => { ckpt.Save(path); return 0; }));
        Assert.Contains(path, ex.Message);
        Assert.Contains("No space left on device", ex.Message);
        Assert.Contains("disk is full", ex.Message);
        Assert.Contains("previous file there is intact", ex.Message);
        Assert.Equal(before, File.ReadAllBytes(path));
        Assert.False(File.Exists(AtomicFile.TempPathFor(path)));
        TrainingCheckpoint.Load(path).Dispose();
    }

    [SkippableFact]
    public void DiskFullWhileMetricsJsonIsMergedKeepsThePreviousFile()
    {
        // metrics.json and config.yaml were written in place: a full disk left them truncated, and a
        // truncated config.yaml makes the next --resume compare against nothing.
        Skip.IfNot(File.Exists("/dev/full"), "needs /dev/full");
        string dir = Directory.CreateTempSubdirectory("diskfull-metrics").FullName;
        string metrics = Path.Combine(dir, "metrics.json");
        MetricsFile.Merge(metrics, "knn", new { top1 = 81.5 });
        string before = File.ReadAllText(metrics);
        var ex = Assert.Throws<IOException>(() => WithFailingWrites(_ => true, () => { MetricsFile.Merge(metrics, "linear", new { top1 = 83.0 }); return 0; }));
        Assert.Contains(metrics, ex.Message);
        Assert.Equal(before, File.ReadAllText(metrics));
        Assert.Equal(81.5, MetricsFile.Read(metrics)["knn"]!["top1"]!.GetValue<double>());
        Assert.False(File.Exists(AtomicFile.TempPathFor(metrics)));
    }

    [SkippableFact]
    public void DiskFullWhileConfigYamlIsWrittenKeepsThePreviousOne()
    {
        Skip.IfNot(File.Exists("/dev/full"), "needs /dev/full");
        string dir = Directory.CreateTempSubdirectory("diskfull-config").FullName;
        string config = Path.Combine(dir, "config.yaml");
        AtomicFile.WriteAllText(config, "verb: distill\nepochs: 3\n");
        Assert.Throws<IOException>(() => WithFailingWrites(_ => true, () => { AtomicFile.WriteAllText(config, "verb: distill\nepochs: 30\n"); return 0; }));
        Assert.Equal("verb: distill\nepochs: 3\n", File.ReadAllText(config));
        Assert.Equal((byte)'v', File.ReadAllBytes(config)[0]);   // no BOM, as File.WriteAllText
    }

    static DataLoader Loader() =>
        new(new SyntheticImageDataset(32), TransformPresets.Train(16, 0.5), new DataLoaderOptions { BatchSize = 8, Seed = 3, DropLast = true, Workers = 1 });

    static TrainerOptions Opts => new() { Epochs = 2, WarmupEpochs = 1, BatchSize = 8, Lr = 1e-3, LogEverySteps = 4, Seed = 1 };

    [SkippableFact]
    public void ATrainerWhoseDiskFillsStopsWithTheErrorAndResumesExactlyOnceThereIsRoom()
    {
        Skip.IfNot(File.Exists("/dev/full"), "needs /dev/full");
        string straight = Directory.CreateTempSubdirectory("diskfull-a").FullName, failing = Directory.CreateTempSubdirectory("diskfull-b").FullName;
        var a = new ClassifyTask(6);
        new Trainer(a, Loader(), Opts, new TrainerRun { Context = new RunContext { OutDir = straight }, TensorBoard = false }).Run();

        var ex = Assert.Throws<IOException>(() => WithFailingWrites(tmp => tmp.Contains("checkpoint-0002"),
            () => new Trainer(new ClassifyTask(6), Loader(), Opts, new TrainerRun { Context = new RunContext { OutDir = failing }, TensorBoard = false }).Run()));
        Assert.Contains(Path.Combine(failing, "checkpoint-0002.ckpt"), ex.Message);
        Assert.Contains("No space left on device", ex.Message);
        Assert.Equal(new[] { Path.Combine(failing, "checkpoint-0001.ckpt") }, CheckpointFiles.List(failing));
        Assert.Empty(Directory.EnumerateFiles(failing, "*.tmp"));

        // Space freed: the run resumes after epoch 1 and ends where the uninterrupted one did.
        var b = new ClassifyTask(99);
        new Trainer(b, Loader(), Opts, new TrainerRun { Context = new RunContext { OutDir = failing }, TensorBoard = false, Resume = true }).Run();
        var wa = a.Model.state_dict();
        foreach (var (k, v) in b.Model.state_dict())
            Assert.True(v.equal(wa[k]).all().item<bool>(), $"{k} differs after the disk-full resume");
    }
}
