using System.Diagnostics;
using System.Text.Json;
using AttnDistill.Checkpoints;
using AttnDistill.Data;
using AttnDistill.Distributed;
using AttnDistill.Models;
using TorchSharp;
using TorchSharp.Modules;
using DataLoader = AttnDistill.Data.DataLoader;
using static TorchSharp.torch;

namespace AttnDistill.Training;

/// <summary>Where a run writes and what it listens to.</summary>
public sealed record TrainerRun
{
    public required string OutDir { get; init; }
    /// <summary>Continue from the newest readable checkpoint in <see cref="OutDir"/>, if any.</summary>
    public bool Resume { get; init; }
    /// <summary>Resolved configuration text, stored in every checkpoint.</summary>
    public string ConfigText { get; init; } = "";
    /// <summary>Architecture stored with checkpoints so a model is rebuilt from the file alone.</summary>
    public VitConfig? ModelConfig { get; init; }
    public IDistributedContext Distributed { get; init; } = SingleProcess.Instance;
    public IProgress<TrainProgress>? Progress { get; init; }
    public Action<string>? Log { get; init; }
    /// <summary>Cancelled on SIGINT/SIGTERM: the current step finishes, a checkpoint is written, the run returns.</summary>
    public CancellationToken Stop { get; init; }
    /// <summary>Stop after this many epochs of this invocation (tests use it to simulate a kill); null: run to the end.</summary>
    public int? StopAfterEpochs { get; init; }
    public bool TensorBoard { get; init; } = true;
    /// <summary>Checkpoints kept on disk (oldest removed first).</summary>
    public int KeepCheckpoints { get; init; } = 2;
    /// <summary>
    /// Called on every rank after each completed epoch (after its checkpoint), with the epoch
    /// number (0-based) and the run log (null off the main rank): pictures, validation, extra log
    /// lines. Not called for an epoch cut short by a stop.
    /// </summary>
    public Action<EpochEnd>? EpochEnd { get; init; }
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
    /// <summary>How often finalizable native memory and free C-heap pages are released (see <see cref="NativeHeap"/>).</summary>
    private const int ReleaseEveryBatches = 250;

    public Trainer(ITrainingTask task, DataLoader loader, TrainerOptions options, TrainerRun run,
        Func<IReadOnlyList<ParameterGroup>, TrainerOptions, double, OptimizerHelper>? optimizerFactory = null)
    {
        _task = task;
        _loader = loader;
        _run = run;
        _opt = options.Validate(run.Distributed.WorldSize);
        _accum = _opt.AccumulationSteps(run.Distributed.WorldSize);
        _peakLr = _opt.PeakLr(run.Distributed.WorldSize);
        if (loader.BatchesPerEpoch < _accum)
            throw new ArgumentException(
                $"an epoch has {loader.BatchesPerEpoch} batches, fewer than the {_accum} accumulation steps of one optimizer step: lower --effective-batch or --batch-size.");
        _groups = task.ParameterGroups(_opt.WeightDecay);
        _trainable = _groups.SelectMany(g => g.Parameters.Select(p => p.Param)).ToArray();
        if (_trainable.Count == 0) throw new ArgumentException("the model has no trainable parameter.");
        _optimizer = (optimizerFactory ?? AdamW)(_groups, _opt, _peakLr);
    }

    public int AccumulationSteps => _accum;
    public double PeakLr => _peakLr;
    public OptimizerHelper Optimizer => _optimizer;

    /// <summary>AdamW (betas from the options) with one param group per <see cref="ParameterGroup"/>.</summary>
    public static OptimizerHelper AdamW(IReadOnlyList<ParameterGroup> groups, TrainerOptions opt, double lr) =>
        optim.AdamW(groups.Select(g => new AdamW.ParamGroup(g.Parameters.Select(p => p.Param), lr, opt.Beta1, opt.Beta2, 1e-8, g.WeightDecay, false, false)),
            lr, opt.Beta1, opt.Beta2, 1e-8, 0, false, false);

    /// <summary>The learning rate at a (fractional) epoch, before per-group scaling.</summary>
    public double LrAt(double epoch) => LrSchedule.At(epoch, _peakLr, _opt.MinLr, _opt.WarmupEpochs, _opt.Epochs);

    public TrainResult Run()
    {
        bool main = _run.Distributed.IsMain;
        using var log = main ? new RunLog(_run.OutDir, _run.TensorBoard) : null;
        int startEpoch = 0, startBatch = 0;
        long optimizerSteps = 0;
        string? lastCheckpoint = null;
        if (_run.Resume && CheckpointFiles.Newest(_run.OutDir, _run.Log) is { } resumeFrom)
        {
            (startEpoch, startBatch, optimizerSteps) = Restore(resumeFrom.Checkpoint);
            resumeFrom.Checkpoint.Dispose();
            lastCheckpoint = resumeFrom.Path;
            _run.Log?.Invoke($"resumed from {resumeFrom.Path}: epoch {startEpoch}, batch {startBatch}");
        }
        else
        {
            // Every rank starts from rank 0's weights.
            _run.Distributed.Broadcast(_task.Model.state_dict().Values.ToArray());
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
            foreach (var batch in _loader.Epoch(epoch, startBatch))
            {
                batchIndex = batch.BatchIndex;
                using (var scope = NewDisposeScope())
                {
                    if (batchIndex % _accum == 0)
                        SetLearningRate(LrAt(epoch + (double)batchIndex / batchesPerEpoch));
                    var loss = _task.Loss(batch);
                    // One host read per step: the total and its parts together.
                    var names = loss.Parts.Keys.ToArray();
                    var packed = stack(new[] { loss.Total.detach() }.Concat(names.Select(n => loss.Parts[n].detach())).ToArray())
                        .to(float64).cpu().data<double>().ToArray();
                    if (!double.IsFinite(packed[0]))
                    {
                        skipped++;
                        string parts = string.Join(", ", names.Select((n, i) => $"{n}={packed[i + 1]}"));
                        string diag = loss.Diagnostics?.Invoke() ?? "";
                        _run.Log?.Invoke($"epoch {epoch} batch {batchIndex}: non-finite loss ({parts}) skipped. {diag}");
                        if (skipped > _opt.MaxSkippedFraction * batchesPerEpoch)
                            throw new TrainingDivergedException(
                                $"{skipped} of {batchesPerEpoch} batches in epoch {epoch} had a non-finite loss (more than {_opt.MaxSkippedFraction:P0}); last: {parts}. {diag} Lower the lr or check the data and teacher.");
                    }
                    else
                    {
                        if (_accum == 1) loss.Total.backward();
                        else
                        {
                            using var accum = ((double)_accum).ToScalar();   // held across the call (see KeptScalars)
                            loss.Total.div(accum).backward();
                        }
                        counted++;
                        sums["loss"] = sums.GetValueOrDefault("loss") + packed[0];
                        for (int i = 0; i < names.Length; i++) sums[names[i]] = sums.GetValueOrDefault(names[i]) + packed[i + 1];
                    }
                    if ((batchIndex + 1) % _accum == 0)
                    {
                        OptimizerStep();
                        optimizerSteps++;
                    }
                    imagesSeen += batch.Count;
                    if (main && (batchIndex % _opt.LogEverySteps == 0 || batchIndex == batchesPerEpoch - 1))
                    {
                        var fields = new Dictionary<string, object>
                        {
                            ["kind"] = _task.Kind, ["epoch"] = epoch, ["batch"] = batchIndex, ["lr"] = CurrentLr(),
                            ["images_per_s"] = imagesSeen / Math.Max(1e-9, watch.Elapsed.TotalSeconds),
                        };
                        fields["loss"] = packed[0];
                        for (int i = 0; i < names.Length; i++) fields["loss_" + names[i]] = packed[i + 1];
                        log!.Write("train", (long)epoch * batchesPerEpoch + batchIndex, fields);
                    }
                    _run.Progress?.Report(new TrainProgress(epoch, _opt.Epochs, batchIndex + 1, batchesPerEpoch, CurrentLr(),
                        sums.ToDictionary(kv => kv.Key, kv => kv.Value / Math.Max(1, counted)), imagesSeen / Math.Max(1e-9, watch.Elapsed.TotalSeconds)));
                }
                if (++batchesThisRun % ReleaseEveryBatches == 0) NativeHeap.Release();
                if (_run.Stop.IsCancellationRequested && (batchIndex + 1) % _accum == 0 && batchIndex + 1 < batchesPerEpoch)
                {
                    interrupted = true;
                    lastCheckpoint = SaveCheckpoint(epoch, batchIndex + 1, optimizerSteps) ?? lastCheckpoint;
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
            bool stopNow = _run.Stop.IsCancellationRequested || (_run.StopAfterEpochs is { } n && epochsThisRun >= n);
            if (last || stopNow || (epoch + 1) % _opt.CheckpointEveryEpochs == 0)
                lastCheckpoint = SaveCheckpoint(epoch + 1, 0, optimizerSteps) ?? lastCheckpoint;
            NativeHeap.Release();
            _run.EpochEnd?.Invoke(new EpochEnd(epoch, last, log));
            if (stopNow && !last) { interrupted = true; epoch++; break; }
        }

        return new TrainResult(epoch, optimizerSteps, skippedTotal, lastEpochLoss,
            imagesSeen / Math.Max(1e-9, watch.Elapsed.TotalSeconds), interrupted, lastCheckpoint);
    }

    private void OptimizerStep()
    {
        _run.Distributed.AverageGradients(_trainable);
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

    /// <summary>Writes checkpoint-EEEE[-BBBBBB].ckpt atomically on the main process; returns its path.</summary>
    private string? SaveCheckpoint(int epoch, int batch, long optimizerSteps)
    {
        if (!_run.Distributed.IsMain) return null;
        using var optimizerBytes = new MemoryStream();
        using (var w = new BinaryWriter(optimizerBytes, System.Text.Encoding.UTF8, leaveOpen: true))
            _optimizer.save_state_dict(w);
        var sections = new Dictionary<string, CheckpointSection>(StringComparer.Ordinal)
        {
            [TrainingCheckpoint.OptimizerSection] = new()
            {
                Tensors = { ["torchsharp_state"] = tensor(optimizerBytes.ToArray()) },
                Json = JsonSerializer.Serialize(new { type = _optimizer.GetType().Name }),
            },
            [TrainingCheckpoint.SchedulerSection] = new()
            {
                Json = JsonSerializer.Serialize(new { optimizer_steps = optimizerSteps, accumulation = _accum, peak_lr = _peakLr, batches_per_epoch = _loader.BatchesPerEpoch }),
            },
            [TrainingCheckpoint.RngSection] = TrainingCheckpoint.CaptureTorchRng(),
        };
        if (_task.SaveState() is { } extra) sections["task"] = extra;
        using var ckpt = new TrainingCheckpoint
        {
            Model = _task.Model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal),
            ModelConfig = _run.ModelConfig,
            Config = _run.ConfigText,
            Epoch = epoch,
            Step = batch,
            Sections = sections,
        };
        string path = CheckpointFiles.PathFor(_run.OutDir, epoch, batch);
        ckpt.Save(path);
        // The model's own tensors belong to the model: keep them out of the checkpoint's Dispose.
        ckpt.Model.Clear();
        CheckpointFiles.Prune(_run.OutDir, _run.KeepCheckpoints, keep: path);
        _run.Log?.Invoke($"checkpoint written: {path}");
        return path;
    }

    /// <summary>Loads model, optimizer, RNG and task state; returns where to continue.</summary>
    private (int Epoch, int Batch, long OptimizerSteps) Restore(TrainingCheckpoint ckpt)
    {
        StateDictLoader.Load(_task.Model, ckpt.Model);
        var opt = ckpt.Section(TrainingCheckpoint.OptimizerSection)
            ?? throw new CheckpointFormatException("the checkpoint has no optimizer state; it cannot be resumed (start a new run).");
        var bytes = opt.Tensors["torchsharp_state"].data<byte>().ToArray();
        using (var r = new BinaryReader(new MemoryStream(bytes))) _optimizer.load_state_dict(r);
        if (ckpt.Section(TrainingCheckpoint.RngSection) is { } rng) TrainingCheckpoint.RestoreTorchRng(rng);
        if (ckpt.Section("task") is { } taskState) _task.LoadState(taskState);
        long steps = 0;
        if (ckpt.Section(TrainingCheckpoint.SchedulerSection) is { } sched)
        {
            using var doc = JsonDocument.Parse(sched.Json);
            steps = doc.RootElement.GetProperty("optimizer_steps").GetInt64();
            int savedAccum = doc.RootElement.GetProperty("accumulation").GetInt32();
            if (ckpt.Step % _accum != 0)
                throw new CheckpointFormatException(
                    $"the checkpoint stopped at batch {ckpt.Step} of an accumulation window of {savedAccum}; with {_accum} steps now it cannot continue exactly. Resume with the same --batch-size and --effective-batch.");
        }
        return (ckpt.Epoch, (int)ckpt.Step, steps);
    }
}
