using AttnDistill.Data;
using AttnDistill.Data.Transforms;
using AttnDistill.Models;
using AttnDistill.Tests.TestSupport;
using AttnDistill.Runs;
using AttnDistill.Training;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;
using DataLoader = AttnDistill.Data.DataLoader;

namespace AttnDistill.Tests.Training;

/// <summary>A tiny ViT classifier: enough to exercise every trainer path.</summary>
sealed class ClassifyTask : ITrainingTask
{
    public ClassifyTask(int seed)
    {
        torch.manual_seed(seed);
        Model = new TinyClassifier();
    }

    public nn.Module Model { get; }
    public string Kind => "test";
    public float? PoisonAt { get; init; }
    int _calls;

    public StepLoss Loss(DataBatch batch)
    {
        var logits = ((TinyClassifier)Model).forward(batch.Images);
        var loss = nn.functional.cross_entropy(logits, batch.Labels);
        if (PoisonAt is { } p && _calls++ == (int)p) loss = loss * float.NaN;
        return new StepLoss(loss, new Dictionary<string, Tensor> { ["ce"] = loss });
    }
}

sealed class TinyClassifier : nn.Module<Tensor, Tensor>
{
#pragma warning disable IDE1006
    private readonly VisionTransformer backbone;
    private readonly TorchSharp.Modules.Linear head;
#pragma warning restore IDE1006
    public TinyClassifier() : base(nameof(TinyClassifier))
    {
        backbone = new VisionTransformer(new VitConfig { ImageSize = 16, PatchSize = 4, EmbedDim = 32, Depth = 2, NumHeads = 2, DropPathRate = 0.1 });
        head = nn.Linear(32, 4);
        RegisterComponents();
    }
    public override Tensor forward(Tensor x) => head.forward(backbone.forward(x));
}

public class TrainerTests
{
    static DataLoader Loader(int batch, int count = 64, long seed = 3) =>
        new(new SyntheticImageDataset(count), TransformPresets.Train(16, 0.5), new DataLoaderOptions { BatchSize = batch, Seed = seed, DropLast = true, Workers = 1 });

    static string TempDir() => Directory.CreateTempSubdirectory("trainer").FullName;

    static TrainerOptions Opts(int epochs = 2, int batch = 8, int effective = 0) => new()
    {
        Epochs = epochs, WarmupEpochs = 1, BatchSize = batch, EffectiveBatch = effective, Lr = 1e-3, LogEverySteps = 1, Seed = 1,
    };

    static Dictionary<string, Tensor> Weights(nn.Module m) =>
        m.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone());

    [Fact]
    public void AccumulatingFourTimesEightEqualsOneBatchOf32()
    {
        // One optimizer step each; no dropout/drop-path randomness is consumed differently because
        // the model is put in eval mode for the comparison (drop path would draw per micro-batch).
        Dictionary<string, Tensor> Run(int batch, int effective)
        {
            var task = new EvalModeTask(new ClassifyTask(5));
            new Trainer(task, Loader(batch, count: 32), Opts(epochs: 1, batch, effective) with { WarmupEpochs = 0 },
                new TrainerRun { Context = new RunContext { OutDir = TempDir() }, TensorBoard = false }).Run();
            return Weights(task.Model);
        }
        var accumulated = Run(8, 32);
        var whole = Run(32, 0);
        // Adam divides by sqrt(v): on near-zero gradients it turns float summation-order noise into
        // ~1e-6 weight differences, about 1000x below the step itself (lr 1e-3).
        foreach (var (k, v) in whole)
            Assert.True(v.allclose(accumulated[k], rtol: 1e-4, atol: 1e-5), $"{k} differs: max {(v - accumulated[k]).abs().max().item<float>()}");
    }

    sealed class EvalModeTask(ClassifyTask inner) : ITrainingTask
    {
        public nn.Module Model => inner.Model;
        public string Kind => "test";
        public void Train() => Model.eval();
        public StepLoss Loss(DataBatch batch) => inner.Loss(batch);
    }

    [Fact]
    public void LossDecreasesAndLogsAreWritten()
    {
        string dir = TempDir();
        var task = new ClassifyTask(1);
        var result = new Trainer(task, Loader(16, 128), Opts(epochs: 6, batch: 16) with { Lr = 3e-3 }, new TrainerRun { Context = new RunContext { OutDir = dir } }).Run();
        var epochs = File.ReadLines(Path.Combine(dir, "log.txt")).Where(l => l.Contains("train_loss")).ToArray();
        Assert.Equal(6, epochs.Length);
        double First(string line) => System.Text.Json.JsonDocument.Parse(line).RootElement.GetProperty("train_loss").GetDouble();
        Assert.True(First(epochs[^1]) < First(epochs[0]) * 0.8, $"loss {First(epochs[0])} -> {First(epochs[^1])}");
        Assert.True(Directory.EnumerateFiles(Path.Combine(dir, "tensorboard"), "events.out.tfevents*").Any());
        Assert.Equal(6, result.EpochsDone);
        Assert.Single(CheckpointFiles.List(dir), p => p.EndsWith("checkpoint-0006.ckpt"));
    }

    [Fact]
    public void ResumedRunEqualsUninterruptedRunBitForBit()
    {
        string straight = TempDir(), resumed = TempDir();
        var a = new ClassifyTask(9);
        new Trainer(a, Loader(8), Opts(epochs: 3), new TrainerRun { Context = new RunContext { OutDir = straight }, TensorBoard = false }).Run();

        // Stop after one epoch, then continue in a fresh task/trainer from the checkpoint.
        var b1 = new ClassifyTask(9);
        var partial = new Trainer(b1, Loader(8), Opts(epochs: 3), new TrainerRun { Context = new RunContext { OutDir = resumed }, TensorBoard = false, StopAfterEpochs = 1 }).Run();
        Assert.True(partial.Interrupted);
        torch.manual_seed(12345); // whatever the RNG did in between must not matter
        var b2 = new ClassifyTask(77);  // different init: everything must come from the checkpoint
        new Trainer(b2, Loader(8), Opts(epochs: 3), new TrainerRun { Context = new RunContext { OutDir = resumed }, TensorBoard = false, Resume = true }).Run();

        var wa = Weights(a.Model);
        foreach (var (k, v) in Weights(b2.Model))
            Assert.True(v.equal(wa[k]).all().item<bool>(), $"{k} differs after resume");
    }

    [Fact]
    public void MidEpochStopWritesACheckpointAndResumesExactly()
    {
        string straight = TempDir(), resumed = TempDir();
        var a = new ClassifyTask(4);
        new Trainer(a, Loader(8), Opts(epochs: 2), new TrainerRun { Context = new RunContext { OutDir = straight }, TensorBoard = false }).Run();

        using var stop = new CancellationTokenSource();
        var b1 = new ClassifyTask(4);
        var progress = new SyncProgress(p => { if (p.Epoch == 0 && p.Batch == 3) stop.Cancel(); });
        var r = new Trainer(b1, Loader(8), Opts(epochs: 2), new TrainerRun { Context = new RunContext { OutDir = resumed, Stop = stop.Token, Progress = new TrainingProgressSink(progress) }, TensorBoard = false }).Run();
        Assert.True(r.Interrupted);
        Assert.EndsWith("checkpoint-0000-000003.ckpt", r.LastCheckpoint);
        var b2 = new ClassifyTask(5);
        new Trainer(b2, Loader(8), Opts(epochs: 2), new TrainerRun { Context = new RunContext { OutDir = resumed }, TensorBoard = false, Resume = true }).Run();
        var wa = Weights(a.Model);
        foreach (var (k, v) in Weights(b2.Model))
            Assert.True(v.equal(wa[k]).all().item<bool>(), $"{k} differs after mid-epoch resume");
    }

    sealed class SyncProgress(Action<TrainProgress> act) : IProgress<TrainProgress>
    {
        public void Report(TrainProgress value) => act(value);
    }

    [Fact]
    public void NonFiniteBatchIsSkippedThenTooManyStopTheRun()
    {
        var task = new ClassifyTask(2) { PoisonAt = 1 };
        var logs = new List<string>();
        // 8 batches per epoch; allow 20%: one poisoned batch is skipped, training goes on.
        var result = new Trainer(task, Loader(8), Opts(epochs: 1) with { MaxSkippedFraction = 0.2 },
            new TrainerRun { Context = new RunContext { OutDir = TempDir(), Log = logs.Add }, TensorBoard = false }).Run();
        Assert.Equal(1, result.SkippedBatches);
        Assert.Contains(logs, l => l.Contains("non-finite loss") && l.Contains("ce=NaN"));
        foreach (var p in task.Model.parameters()) Assert.False(p.isnan().any().item<bool>());

        var ex = Assert.Throws<TrainingDivergedException>(() =>
            new Trainer(new ClassifyTask(2) { PoisonAt = 0 }, Loader(8), Opts(epochs: 1),
                new TrainerRun { Context = new RunContext { OutDir = TempDir() }, TensorBoard = false }).Run());
        Assert.Contains("non-finite", ex.Message);
    }

    [Fact]
    public void CorruptNewestCheckpointFallsBackToThePreviousOne()
    {
        string dir = TempDir();
        new Trainer(new ClassifyTask(3), Loader(8), Opts(epochs: 2), new TrainerRun { Context = new RunContext { OutDir = dir }, TensorBoard = false }).Run();
        var newest = CheckpointFiles.List(dir)[0];
        File.WriteAllBytes(newest, File.ReadAllBytes(newest)[..100]);   // truncated
        var logs = new List<string>();
        var r = new Trainer(new ClassifyTask(3), Loader(8), Opts(epochs: 2), new TrainerRun { Context = new RunContext { OutDir = dir, Log = logs.Add }, TensorBoard = false, Resume = true }).Run();
        Assert.Contains(logs, l => l.Contains("skipping unreadable checkpoint"));
        Assert.Contains(logs, l => l.Contains("resumed from") && l.Contains("checkpoint-0001.ckpt"));
        Assert.Equal(2, r.EpochsDone);
    }
}
