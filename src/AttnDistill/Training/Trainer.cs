using AttnDistill.Optim;
using AttnDistill.Tensors;
using System.Diagnostics;
using AttnDistill.Checkpoints;
using AttnDistill.Data;
using AttnDistill.Distributed;
using AttnDistill.Models;
using AttnDistill.Runs;
using TorchSharp;
using TorchSharp.Modules;
using DataLoader = AttnDistill.Data.DataLoader;
using static TorchSharp.torch;

namespace AttnDistill.Training;

/// <summary>How the trainer runs inside its job: the job's <see cref="RunContext"/> plus training-only switches.</summary>
public sealed record TrainerRun
{
    /// <summary>Device, process group, run folder, config text, log, progress and stop request of the job.</summary>
    public required RunContext Context { get; init; }
    /// <summary>Continue from the newest readable checkpoint in the run folder, if any.</summary>
    public bool Resume { get; init; }
    /// <summary>Architecture stored with checkpoints so a model is rebuilt from the file alone.</summary>
    public VitConfig? ModelConfig { get; init; }
    /// <summary>Stop after this many epochs of this invocation (tests use it to simulate a kill); null: run to the end.</summary>
    public int? StopAfterEpochs { get; init; }
    public bool TensorBoard { get; init; } = true;
    /// <summary>
    /// Called on every rank after each completed epoch (after its checkpoint), with the epoch
    /// number (0-based) and the run log (null off the main rank): pictures, validation, extra log
    /// lines. Not called for an epoch cut short by a stop.
    /// </summary>
    public Action<EpochEnd>? EpochEnd { get; init; }

    public string OutDir => Context.OutDir;
    public IDistributedContext Distributed => Context.Distributed;
    public Action<string>? Log => Context.Log;
    public CancellationToken Stop => Context.Stop;
}

/// <summary>What an end-of-epoch hook receives.</summary>
/// <param name="Epoch">The epoch just completed, 0-based.</param>
/// <param name="Last">True for the run's final epoch.</param>
/// <param name="Log">The run's log (log.txt + TensorBoard) on the main rank; null elsewhere.</param>
public sealed record EpochEnd(int Epoch, bool Last, RunLog? Log);

/// <summary>
/// The one training loop behind distillation, MAE pre-training, linear probing and fine-tuning:
/// AdamW with timm's weight-decay groups, MAE's per-iteration warm-up + cosine schedule, gradient
/// accumulation to an effective batch, optional clipping, non-finite batches skipped (and the run
/// stopped past a threshold), atomic checkpoints with bit-exact resume, JSON-line and TensorBoard
/// logs. Tasks (<see cref="ITrainingTask"/>) only compute a loss.
/// <para>
/// Data-parallel (several ranks, <see cref="TrainerRun.Distributed"/>): every rank starts from rank
/// 0's weights, reads its own shard of each epoch, and averages gradients before each optimizer
/// step, so all ranks hold the same weights. Logged losses are averaged over ranks; only rank 0
/// writes logs and checkpoints (what they hold and how a resume reads them back, over any number
/// of ranks: <see cref="TrainerCheckpoints"/>). A stop request (a signal seen by any
/// rank) is agreed on by all ranks at the next optimizer step.
/// </para>
/// </summary>
public sealed class Trainer
{
    private readonly ITrainingTask _task;
    private readonly DataLoader _loader;
    private readonly TrainerOptions _opt;
    private readonly TrainerRun _run;
    private readonly IReadOnlyList<ParameterGroup> _groups;
    private readonly OptimizerHelper _optimizer;
    private readonly IReadOnlyList<Parameter> _trainable;
    private readonly int _accum;
    private readonly double _peakLr;
    private readonly TrainerCheckpoints _checkpoints;
    /// <summary>How often finalizable native memory and free C-heap pages are released (see <see cref="NativeHeap"/>).</summary>
    private const int ReleaseEveryBatches = 250;

    public Trainer(ITrainingTask task, DataLoader loader, TrainerOptions options, TrainerRun run,
        Func<IReadOnlyList<ParameterGroup>, TrainerOptions, double, OptimizerHelper>? optimizerFactory = null)
    {
        _task = task;
        _loader = loader;
        _run = run;
        _opt = options.Validate(run.Distributed.WorldSize);
        CheckDistributedSetup(loader, run.Distributed);
        CheckModelDevice(task.Model, run.Context);
        _accum = _opt.AccumulationSteps(run.Distributed.WorldSize);
        _peakLr = _opt.PeakLr(run.Distributed.WorldSize);
        if (loader.BatchesPerEpoch < _accum)
            throw new ArgumentException(
                $"an epoch has {loader.BatchesPerEpoch} batches, fewer than the {_accum} accumulation steps of one optimizer step: lower --effective-batch or --batch-size.");
        _groups = task.ParameterGroups(_opt.WeightDecay);
        _trainable = _groups.SelectMany(g => g.Parameters.Select(p => p.Param)).ToArray();
        if (_trainable.Count == 0) throw new ArgumentException("the model has no trainable parameter.");
        _optimizer = (optimizerFactory ?? AdamW)(_groups, _opt, _peakLr);
        _checkpoints = new TrainerCheckpoints(task, _optimizer, _opt, run, _accum, _peakLr, loader.BatchesPerEpoch);
    }

    public int AccumulationSteps => _accum;
    public double PeakLr => _peakLr;
    public OptimizerHelper Optimizer => _optimizer;

    /// <summary>AdamW (betas from the options) with one param group per <see cref="ParameterGroup"/>; its step keeps its Scalars (Optim/KeptScalarAdamW).</summary>
    public static OptimizerHelper AdamW(IReadOnlyList<ParameterGroup> groups, TrainerOptions opt, double lr) =>
        new KeptScalarAdamW(groups.Select(g => new AdamW.ParamGroup(g.Parameters.Select(p => p.Param), lr, opt.Beta1, opt.Beta2, 1e-8, g.WeightDecay, false, false)),
            lr, opt.Beta1, opt.Beta2, 1e-8, 0);

    /// <summary>The learning rate at a (fractional) epoch, before per-group scaling.</summary>
    public double LrAt(double epoch) => LrSchedule.At(epoch, _peakLr, _opt.MinLr, _opt.WarmupEpochs, _opt.Epochs);

    public TrainResult Run()
    {
        var dist = _run.Distributed;
        bool main = dist.IsMain;
        using var log = main ? new RunLog(_run.OutDir, _run.TensorBoard) : null;
        int startEpoch = 0, startBatch = 0;
        long optimizerSteps = 0;
        string? lastCheckpoint = null;
        if (main && _opt.WarmupEpochs > _opt.Epochs)
            _run.Log?.Invoke($"warning: the warm-up ({_opt.WarmupEpochs} epochs) is longer than the run ({_opt.Epochs}): the lr never reaches its peak {_peakLr:G4}; set --warmup-epochs.");
        var resumed = _run.Resume ? _checkpoints.Restore() : null;
        if (resumed is { } r)
        {
            (startEpoch, startBatch, optimizerSteps, lastCheckpoint) = r;
            if (main) _run.Log?.Invoke($"resumed from {lastCheckpoint}: epoch {startEpoch}, batch {startBatch}");
        }
        else
        {
            // Every rank starts from rank 0's weights; each draws its own random numbers (drop path,
            // masks) from then on, as MAE seeds seed + rank. Rank 0 keeps one process's stream.
            dist.Broadcast(_task.Model.state_dict().Values.ToArray());
            if (dist.Rank > 0) manual_seed(_opt.Seed + dist.Rank);
        }

        int batchesPerEpoch = _loader.BatchesPerEpoch;
        int skippedTotal = 0;
        var lastEpochLoss = new Dictionary<string, double>();
        var watch = Stopwatch.StartNew();
        long imagesSeen = 0;
        bool interrupted = false;
        int epochsThisRun = 0;
        long batchesThisRun = 0;
        int epoch = startEpoch;

        for (; epoch < _opt.Epochs && !interrupted; epoch++)
        {
            _task.Train();
            var sums = new Dictionary<string, double>();
            int counted = 0, skipped = 0, batchIndex = startBatch;
            foreach (var batch in DeviceFeed.ToDevice(_loader.Epoch(epoch, startBatch), _run.Context.Device))
            {
                batchIndex = batch.BatchIndex;
                using (var scope = NewDisposeScope())
                {
                    if (batchIndex % _accum == 0)
                        SetLearningRate(LrAt(epoch + (double)batchIndex / batchesPerEpoch));
                    var step = ForwardBackward(batch);
                    var (names, packed) = (step.Names, step.Packed);
                    if (!double.IsFinite(packed[0]))
                    {
                        skipped++;
                        string parts = string.Join(", ", names.Select((n, i) => $"{n}={packed[i + 1]}"));
                        string diag = step.Diagnostics?.Invoke() ?? "";
                        _run.Log?.Invoke($"epoch {epoch} batch {batchIndex}: non-finite loss ({parts}) skipped. {diag}");
                        if (skipped > _opt.MaxSkippedFraction * batchesPerEpoch)
                            throw new TrainingDivergedException(
                                $"{skipped} of {batchesPerEpoch} batches in epoch {epoch} had a non-finite loss (more than {_opt.MaxSkippedFraction:P0}); last: {parts}. {diag} Lower the lr or check the data and teacher.");
                    }
                    else
                    {
                        counted++;
                        sums["loss"] = sums.GetValueOrDefault("loss") + packed[0];
                        for (int i = 0; i < names.Length; i++) sums[names[i]] = sums.GetValueOrDefault(names[i]) + packed[i + 1];
                    }
                    if ((batchIndex + 1) % _accum == 0)
                    {
                        OptimizerStep(optimizerSteps);
                        optimizerSteps++;
                    }
                    // Every rank sees the same number of batches: images/s over all of them is this rank's times the world size.
                    imagesSeen += batch.Count * dist.WorldSize;
                    if (batchIndex % _opt.LogEverySteps == 0 || batchIndex == batchesPerEpoch - 1)
                    {
                        var meanOverRanks = dist.AverageScalars(packed);   // collective: every rank logs at the same batches
                        if (main)
                        {
                            var fields = new Dictionary<string, object>
                            {
                                ["kind"] = _task.Kind, ["epoch"] = epoch, ["batch"] = batchIndex, ["lr"] = CurrentLr(),
                                ["images_per_s"] = imagesSeen / Math.Max(1e-9, watch.Elapsed.TotalSeconds),
                            };
                            fields["loss"] = meanOverRanks[0];
                            for (int i = 0; i < names.Length; i++) fields["loss_" + names[i]] = meanOverRanks[i + 1];
                            log!.Write("train", (long)epoch * batchesPerEpoch + batchIndex, fields);
                        }
                    }
                    _run.Context.Progress.Training(new TrainProgress(epoch, _opt.Epochs, batchIndex + 1, batchesPerEpoch, CurrentLr(),
                        sums.ToDictionary(kv => kv.Key, kv => kv.Value / Math.Max(1, counted)), imagesSeen / Math.Max(1e-9, watch.Elapsed.TotalSeconds)));
                }
                if (++batchesThisRun % ReleaseEveryBatches == 0) NativeHeap.Release();
                // A stop seen by any rank stops all of them at the same optimizer step.
                if ((batchIndex + 1) % _accum == 0 && batchIndex + 1 < batchesPerEpoch && dist.Any(_run.Stop.IsCancellationRequested))
                {
                    interrupted = true;
                    lastCheckpoint = _checkpoints.Save(epoch, batchIndex + 1, optimizerSteps) ?? lastCheckpoint;
                    break;
                }
            }
            if (interrupted) break;
            skippedTotal += skipped;
            var averaged = _run.Distributed.AverageScalars(sums.Values.Select(v => v / Math.Max(1, counted)).ToArray());
            lastEpochLoss = sums.Keys.Zip(averaged).ToDictionary(kv => kv.First, kv => kv.Second);
            if (main)
            {
                var fields = new Dictionary<string, object> { ["kind"] = _task.Kind, ["epoch"] = epoch, ["skipped"] = skipped };
                foreach (var (k, v) in lastEpochLoss) fields["train_" + k] = v;
                log!.Write("epoch", epoch, fields);
            }
            startBatch = 0;
            epochsThisRun++;
            bool last = epoch + 1 == _opt.Epochs;
            bool stopNow = dist.Any(_run.Stop.IsCancellationRequested) || (_run.StopAfterEpochs is { } n && epochsThisRun >= n);
            if (last || stopNow || (epoch + 1) % _opt.CheckpointEveryEpochs == 0)
                lastCheckpoint = _checkpoints.Save(epoch + 1, 0, optimizerSteps) ?? lastCheckpoint;
            NativeHeap.Release();
            _run.EpochEnd?.Invoke(new EpochEnd(epoch, last, log));
            if (stopNow && !last) { interrupted = true; epoch++; break; }
        }

        return new TrainResult(epoch, optimizerSteps, skippedTotal, lastEpochLoss,
            imagesSeen / Math.Max(1e-9, watch.Elapsed.TotalSeconds), interrupted, lastCheckpoint);
    }

    /// <summary>What one micro-batch gave: [total, parts...] read to the host together, and the part names.</summary>
    internal sealed record MicroBatch(string[] Names, double[] Packed, Func<string>? Diagnostics);

    /// <summary>
    /// Loss of one micro-batch, one host read (total and parts together), then backward (scaled
    /// for accumulation) unless the total is non-finite. Runs inside the caller's dispose scope.
    /// Internal so the benchmarks time exactly this step.
    /// </summary>
    internal MicroBatch ForwardBackward(DataBatch batch)
    {
        StepLoss loss;
        // bf16: the forward (a frozen teacher's included) and the loss under autocast; backward outside it.
        using (_opt.Precision == ComputePrecision.BFloat16 ? Autocast.Enable(ScalarType.BFloat16) : null)
            loss = _task.Loss(batch);
        var names = loss.Parts.Keys.ToArray();
        var packed = stack(new[] { loss.Total.detach() }.Concat(names.Select(n => loss.Parts[n].detach())).ToArray())
            .to(float64).cpu().data<double>().ToArray();
        if (double.IsFinite(packed[0]))
        {
            if (_accum == 1) loss.Total.backward();
            else
            {
                using var accum = ((double)_accum).ToScalar();   // held across the call (see KeptScalars)
                loss.Total.div(accum).backward();
            }
        }
        return new MicroBatch(names, packed, loss.Diagnostics);
    }

    /// <param name="iteration">The global optimizer-step index, for <see cref="ITrainingTask.AfterGradientsAveraged"/>.</param>
    internal void OptimizerStep(long iteration = 0)
    {
        _task.BeforeOptimizerStep();
        _run.Distributed.AverageGradients(_trainable);
        _task.AfterGradientsAveraged(_optimizer, iteration);
        if (_opt.ClipGrad > 0) nn.utils.clip_grad_norm_(_trainable, _opt.ClipGrad);
        _optimizer.step();
        _optimizer.zero_grad();
        _task.AfterOptimizerStep();
    }

    private void SetLearningRate(double lr)
    {
        int i = 0;
        foreach (var g in _optimizer.ParamGroups) g.LearningRate = lr * _groups[i++].LrScale;
    }

    private double CurrentLr() => _optimizer.ParamGroups.First().LearningRate / _groups[0].LrScale;

    /// <summary>Every parameter and buffer of the trained module must be on the run's device before the optimizer sees it.</summary>
    private static void CheckModelDevice(nn.Module model, RunContext context)
    {
        string want = context.DeviceName;
        foreach (var (name, p) in model.named_parameters())
            if (RunDevice.Name(p.device) != want)
                throw new ArgumentException($"parameter {name} is on {RunDevice.Name(p.device)} but the run's device is {want}: move the model with .to(context.Device) before building the trainer.");
        foreach (var (name, b) in model.named_buffers())
            if (RunDevice.Name(b.device) != want)
                throw new ArgumentException($"buffer {name} is on {RunDevice.Name(b.device)} but the run's device is {want}: move the model with .to(context.Device) before building the trainer.");
    }

    /// <summary>The loader must read this rank's shard; under mpirun the run must not be a single-process one.</summary>
    private static void CheckDistributedSetup(DataLoader loader, IDistributedContext dist)
    {
        if (loader.Options.WorldSize != dist.WorldSize || loader.Options.Rank != dist.Rank)
            throw new ArgumentException(
                $"the data loader reads shard {loader.Options.Rank} of {loader.Options.WorldSize} but the trainer runs as rank {dist.Rank} of {dist.WorldSize}: build the loader from the same distributed context (TrainingData.Loader(..., dist, ...)).");
        if (dist.WorldSize == 1 && DistributedContext.LaunchWorldSize > 1)
            throw new ArgumentException(
                $"mpirun started {DistributedContext.LaunchWorldSize} processes but this run was given a single-process context: build the RunContext with DistributedContext.FromEnvironment(device).");
    }
}
