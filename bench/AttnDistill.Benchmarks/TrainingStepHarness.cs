using AttnDistill.Data;
using AttnDistill.Data.Transforms;
using AttnDistill.Training;
using static TorchSharp.torch;

namespace AttnDistill.Benchmarks;

/// <summary>
/// The product's <see cref="Trainer"/> around a task, fed one fixed batch: a step is exactly the
/// trainer's micro-batch (loss, one host read, backward) and optimizer step (AdamW, zero_grad,
/// task hooks); only the data loader is left out (it is timed on its own).
/// </summary>
public sealed class TrainingStepHarness : IDisposable
{
    private readonly Trainer _trainer;
    private readonly DataBatch _batch;
    private readonly ITrainingTask _task;

    /// <param name="device">Where the batch lives (the task's modules must already be there); null: the CPU.</param>
    public TrainingStepHarness(ITrainingTask task, int batchSize, int imageSize, long seed = 0, ComputePrecision precision = ComputePrecision.Float32, Device? device = null)
    {
        _task = task;
        // The trainer wants a loader (it checks batches per epoch against accumulation); it is never iterated.
        var dataset = new ConstantImageDataset(batchSize, imageSize);
        var loader = new DataLoader(dataset, TransformPresets.Eval(imageSize), new DataLoaderOptions { BatchSize = batchSize, Workers = 0 });
        var options = new TrainerOptions { Epochs = 1, WarmupEpochs = 0, BatchSize = batchSize, Lr = 1e-4, Seed = (int)seed, Precision = precision };
        Precision = precision;
        _trainer = new Trainer(task, loader, options, new TrainerRun { Context = Runs.RunContext.Cpu(Path.GetTempPath()) with { Device = device ?? CPU }, TensorBoard = false });
        var generator = new Generator((ulong)seed);
        var images = randn(new long[] { batchSize, 3, imageSize, imageSize }, generator: generator);
        var labels = zeros(batchSize, dtype: ScalarType.Int64);
        if (device is not null)
        {
            // The same values on every device: drawn on the CPU, then copied.
            images = images.to(device);
            labels = labels.to(device);
        }
        _batch = new DataBatch(0, 0, images, labels, Enumerable.Range(0, batchSize).ToArray());
        task.Train();
    }

    public Trainer Trainer => _trainer;
    public ComputePrecision Precision { get; }

    /// <summary>One training step; returns the loss read by the trainer.</summary>
    public double Step()
    {
        using var scope = NewDisposeScope();
        var micro = _trainer.ForwardBackward(_batch);
        _trainer.OptimizerStep();
        return micro.Packed[0];
    }

    /// <summary>The loss and its parts on the fixed batch, without a step (no gradients); "total" is the sum.</summary>
    public IReadOnlyDictionary<string, double> LossParts()
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        // As the trainer computes it: under the autocast scope of a bf16 run.
        using var autocast = Precision == ComputePrecision.BFloat16 ? Models.Autocast.Enable(ScalarType.BFloat16) : null;
        var loss = _task.Loss(_batch);
        var parts = loss.Parts.ToDictionary(kv => kv.Key, kv => kv.Value.to(ScalarType.Float64).cpu().item<double>());
        parts["total"] = loss.Total.to(ScalarType.Float64).cpu().item<double>();
        return parts;
    }

    public void Dispose() => _batch.Dispose();
}
