using AttnDistill.Data;
using AttnDistill.Data.Transforms;
using AttnDistill.Distillation;
using AttnDistill.Evaluation;
using AttnDistill.Models;
using AttnDistill.Pretraining;
using AttnDistill.Runs;
using AttnDistill.Tests.TestSupport;
using AttnDistill.Training;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace AttnDistill.Tests.Runs;

/// <summary>
/// Catches a forgotten device without a GPU. A step runs on the CPU while libtorch's default
/// device is "meta" (shape-only tensors): every tensor the step creates without naming a device
/// (<c>zeros(n)</c> instead of <c>zeros(n, device: x.device)</c>) lands on meta. Mixed with the
/// step's CPU tensors it either throws at once ("Expected all tensors to be on the same device")
/// or, for the ops that let meta win (matmul, cat), yields meta results; the audit then finds them
/// among every tensor the step's dispose scope saw. On a CUDA run the same line would have put
/// the tensor on the host while the model sits on the GPU. What it cannot see: a host batch that
/// is never copied (the loader's tensors are created explicitly on the host); DeviceFeed is
/// tested for that on its own.
/// </summary>
public class DeviceAuditTests
{
    static readonly Device Meta = new(DeviceType.META);

    /// <summary>Runs <paramref name="step"/> with meta as the default device; returns what the audit found (empty: clean).</summary>
    static List<string> Audit(Action step)
    {
        using var scope = NewDisposeScope();
        set_default_device(Meta);
        try { step(); }
        finally { set_default_device(CPU); }
        return scope.DisposablesView.OfType<Tensor>()
            .Where(t => !t.IsInvalid && t.device_type == DeviceType.META)
            .Select(t => $"[{string.Join(", ", t.shape)}] {t.dtype}")
            .ToList();
    }

    static DataBatch FirstBatch(int size, int batch = 4)
    {
        var data = new SyntheticImageDataset(16, size, classes: 4);
        var loader = new DataLoader(data, TransformPresets.Train(size, 0.5), new DataLoaderOptions { BatchSize = batch, Seed = 1, DropLast = true, Workers = 0 });
        foreach (var b in loader.Epoch(0))
            return new DataBatch(b.Epoch, b.BatchIndex, b.Images.clone().DetachFromDisposeScope(), b.Labels.clone().DetachFromDisposeScope(), b.Indices.ToArray());
        throw new InvalidOperationException("no batch");
    }

    static Trainer OneStepTrainer(ITrainingTask task, int size) =>
        new(task, new DataLoader(new SyntheticImageDataset(16, size, classes: 4), TransformPresets.Train(size, 0.5),
                new DataLoaderOptions { BatchSize = 4, DropLast = true, Workers = 0 }),
            new TrainerOptions { Epochs = 1, WarmupEpochs = 0, BatchSize = 4, Lr = 1e-3 },
            new TrainerRun { Context = RunContext.Cpu(Directory.CreateTempSubdirectory("audit").FullName), TensorBoard = false });

    [Fact]
    public void TheAuditFindsATensorCreatedWithoutADevice()
    {
        using var x = ones(3, 4);
        // A matmul with a device-less weight: meta wins silently, and the audit sees it.
        Assert.NotEmpty(Audit(() => x.matmul(ones(4, 2))));
        // An add throws at once: the same forgotten device, caught by the step itself.
        Assert.Throws<System.Runtime.InteropServices.ExternalException>(() => Audit(() => x.add(zeros(3, 4))));
        Assert.Empty(Audit(() => x.matmul(ones(4, 2, device: x.device))));
    }

    [Fact]
    public void ADistillationStepCreatesEveryTensorOnTheModelsDevice()
    {
        manual_seed(0);
        var t = new VitConfig { ImageSize = 16, PatchSize = 4, EmbedDim = 32, Depth = 2, NumHeads = 2 };
        var s = new VitConfig { ImageSize = 16, PatchSize = 8, EmbedDim = 16, Depth = 1, NumHeads = 2 };
        using var teacher = new VisionTransformer(t);
        using var student = new DistillStudent(s, t.EmbedDim, 2);
        foreach (var method in new[] { DistillationMethod.AttnDistill, DistillationMethod.CompRess })
        {
            var task = new DistillationTask(teacher, student, new DistillLossOptions { WeightAttn = 0.1, AttnTemperature = 10, WeightByValue = method == DistillationMethod.AttnDistill },
                method, compressQueue: 32);
            var trainer = OneStepTrainer(task, 16);
            using var batch = FirstBatch(16);
            Assert.Empty(Audit(() => { trainer.ForwardBackward(batch); trainer.OptimizerStep(); }));
        }
    }

    [Fact]
    public void AnMaeStepCreatesEveryTensorOnTheModelsDevice()
    {
        manual_seed(0);
        var enc = new VitConfig { ImageSize = 16, PatchSize = 4, EmbedDim = 32, Depth = 1, NumHeads = 2, PosEmbed = PosEmbedKind.SinCos };
        using var mae = new MaskedAutoencoder(MaeConfig.For(enc) with { DecoderEmbedDim = 16, DecoderDepth = 1, DecoderNumHeads = 2 });
        var trainer = OneStepTrainer(new MaeTrainingTask(mae), 16);
        using var batch = FirstBatch(16);
        Assert.Empty(Audit(() => { trainer.ForwardBackward(batch); trainer.OptimizerStep(); }));
    }

    [Fact]
    public void AKnnPassCreatesEveryTensorOnTheModelsDevice()
    {
        manual_seed(0);
        using var vit = new VisionTransformer(new VitConfig { ImageSize = 16, PatchSize = 4, EmbedDim = 32, Depth = 1, NumHeads = 2 });
        vit.eval();
        using var batch = FirstBatch(16, batch: 8);
        Assert.Empty(Audit(() =>
        {
            using var train = FeatureExtractor.Extract(vit.forward, new[] { (batch.Images, batch.Labels) });
            Knn.Classify(train.Features, train.Labels, train.Features, train.Labels, 4, new[] { 2, 4 }, Knn.DefaultTemperature);
        }));
    }

    [Fact]
    public void ALinearProbeStepCreatesEveryTensorOnTheModelsDevice()
    {
        manual_seed(0);
        using var vit = new VisionTransformer(new VitConfig { ImageSize = 16, PatchSize = 4, EmbedDim = 32, Depth = 1, NumHeads = 2 });
        using var sweep = new LinearProbeSweep(32, 4, new[] { 0.1, 1.0 });
        var trainer = new Trainer(new LinearProbeTask(vit, sweep, 0.1), new DataLoader(new SyntheticImageDataset(16, 16, classes: 4), TransformPresets.Train(16, 0.5),
                new DataLoaderOptions { BatchSize = 4, DropLast = true, Workers = 0 }),
            new TrainerOptions { Epochs = 1, WarmupEpochs = 0, BatchSize = 4, Lr = 1e-3, WeightDecay = 0 },
            new TrainerRun { Context = RunContext.Cpu(Directory.CreateTempSubdirectory("audit").FullName), TensorBoard = false }, LinearProbeTask.LarsFactory);
        using var batch = FirstBatch(16);
        Assert.Empty(Audit(() => { trainer.ForwardBackward(batch); trainer.OptimizerStep(); }));
    }

    [Fact]
    public void TheTrainerRefusesAModelThatIsNotOnTheRunsDevice()
    {
        using var vit = new VisionTransformer(new VitConfig { ImageSize = 16, PatchSize = 4, EmbedDim = 32, Depth = 1, NumHeads = 2 });
        using var sweep = new LinearProbeSweep(32, 4, new[] { 0.1 });
        var ex = Assert.Throws<ArgumentException>(() => new Trainer(new LinearProbeTask(vit, sweep, 0.1),
            new DataLoader(new SyntheticImageDataset(16, 16, classes: 4), TransformPresets.Train(16, 0.5), new DataLoaderOptions { BatchSize = 4, DropLast = true, Workers = 0 }),
            new TrainerOptions { Epochs = 1, WarmupEpochs = 0, BatchSize = 4, Lr = 1e-3, WeightDecay = 0 },
            new TrainerRun { Context = RunContext.Cpu(Path.GetTempPath()) with { Device = Meta }, TensorBoard = false }));
        Assert.Contains("is on cpu but the run's device is meta", ex.Message);
    }

    [Fact]
    public void OnTheCpuTheDeviceFeedPassesTheLoadersBatchesThrough()
    {
        var loader = new DataLoader(new SyntheticImageDataset(8, 16, classes: 4), TransformPresets.Eval(16), new DataLoaderOptions { BatchSize = 4, Shuffle = false, Workers = 0 });
        var epoch = loader.Epoch(0);
        Assert.Same(epoch, DeviceFeed.ToDevice(epoch, CPU));
    }
}

/// <summary>The accelerator feed's prefetching order, driven on the CPU with a clone standing in for the pinned, non-blocking copy.</summary>
public class DeviceFeedTests
{
    [Fact]
    public void TheNextBatchIsCopiedBeforeTheCurrentOneIsHandedOutAndEveryCopyIsReleased()
    {
        var loader = new DataLoader(new SyntheticImageDataset(12, 16, classes: 4), TransformPresets.Eval(16), new DataLoaderOptions { BatchSize = 4, Shuffle = false, Workers = 0 });
        var events = new List<string>();
        var made = new List<Tensor>();
        int copies = 0;
        (Tensor, Tensor) Copy(Tensor host)
        {
            events.Add($"copy {copies++ / 2}");
            var staged = host.clone().DetachFromDisposeScope();
            var onDevice = staged.clone().DetachFromDisposeScope();
            made.Add(staged);
            made.Add(onDevice);
            return (staged, onDevice);
        }
        var expected = loader.Epoch(0).Select(b => b.Images.sum().item<float>()).ToList();
        var seen = new List<float>();
        foreach (var batch in DeviceFeed.Prefetched(loader.Epoch(0), Copy))
        {
            events.Add($"step {batch.BatchIndex}");
            seen.Add(batch.Images.sum().item<float>());
        }
        Assert.Equal(expected, seen);
        // Batch i + 1 (images, then labels) is on its way while batch i is trained on.
        Assert.Equal(new[] { "copy 0", "copy 0", "copy 1", "copy 1", "step 0", "copy 2", "copy 2", "step 1", "step 2" }, events);
        Assert.All(made, t => Assert.True(t.IsInvalid, "every staged and device copy is disposed by the end of the epoch"));
    }

    [Fact]
    public void AConsumerThatStopsEarlyLeavesNoCopyBehind()
    {
        var loader = new DataLoader(new SyntheticImageDataset(12, 16, classes: 4), TransformPresets.Eval(16), new DataLoaderOptions { BatchSize = 4, Shuffle = false, Workers = 0 });
        var made = new List<Tensor>();
        (Tensor, Tensor) Copy(Tensor host)
        {
            var staged = host.clone().DetachFromDisposeScope();
            var onDevice = staged.clone().DetachFromDisposeScope();
            made.Add(staged);
            made.Add(onDevice);
            return (staged, onDevice);
        }
        foreach (var batch in DeviceFeed.Prefetched(loader.Epoch(0), Copy))
            if (batch.BatchIndex == 0) break;                                       // as the trainer does on a stop request
        Assert.Equal(8, made.Count);                                                 // batches 0 and 1 were copied
        Assert.All(made, t => Assert.True(t.IsInvalid, "the held batch and the one on its way are both released"));
    }
}
