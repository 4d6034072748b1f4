using AttnDistill.Optim;
using AttnDistill.Tensors;
using System.Diagnostics;
using System.Text.Json;
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
    /// <summary>Checkpoints kept on disk (oldest removed first).</summary>
    public int KeepCheckpoints { get; init; } = 2;
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
/// writes logs and checkpoints. A checkpoint holds every rank's RNG state; on resume rank 0 reads
/// it and sends the state to the others (no shared file system needed), and the position inside
/// an epoch is converted when the number of ranks changed. A stop request (a signal seen by any
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
        var resumed = !_run.Resume ? null : dist.WorldSize == 1 ? RestoreLocal() : RestoreShared();
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
            bool stopNow = dist.Any(_run.Stop.IsCancellationRequested) || (_run.StopAfterEpochs is { } n && epochsThisRun >= n);
            if (last || stopNow || (epoch + 1) % _opt.CheckpointEveryEpochs == 0)
                lastCheckpoint = SaveCheckpoint(epoch + 1, 0, optimizerSteps) ?? lastCheckpoint;
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

    /// <summary>Writes checkpoint-EEEE[-BBBBBB].ckpt atomically on the main process; returns its path. Every rank calls it (RNG states are gathered).</summary>
    private string? SaveCheckpoint(int epoch, int batch, long optimizerSteps)
    {
        var rng = CaptureRng();
        if (!_run.Distributed.IsMain)
        {
            foreach (var t in rng.Tensors.Values) t.Dispose();
            return null;
        }
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
                Json = JsonSerializer.Serialize(new
                {
                    optimizer_steps = optimizerSteps, accumulation = _accum, peak_lr = _peakLr, batches_per_epoch = _loader.BatchesPerEpoch,
                    world_size = _run.Distributed.WorldSize, batch_size = _opt.BatchSize,
                }),
            },
            [TrainingCheckpoint.RngSection] = rng,
        };
        if (_task.SaveState() is { } extra) sections["task"] = extra;
        using var ckpt = new TrainingCheckpoint
        {
            Model = _task.Model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal),
            ModelConfig = _run.ModelConfig,
            Config = _run.Context.ConfigText,
            Epoch = epoch,
            Step = batch,
            Sections = sections,
        };
        string path = CheckpointFiles.PathFor(_run.OutDir, epoch, batch);
        ckpt.Save(path);
        // The model's own tensors belong to the model, the task state's to the task (CompRess's live
        // queue): keep them out of the checkpoint's Dispose.
        ckpt.Model.Clear();
        if (sections.TryGetValue("task", out var taskSection)) taskSection.Tensors.Clear();
        CheckpointFiles.Prune(_run.OutDir, _run.KeepCheckpoints, keep: path);
        _run.Log?.Invoke($"checkpoint written: {path}");
        return path;
    }

    /// <summary>Where a resumed run continues, in this run's batches.</summary>
    private readonly record struct ResumePoint(int Epoch, int Batch, long OptimizerSteps, string Path);

    /// <summary>One process: loads model, optimizer, RNG and task state from the newest checkpoint; null when there is none.</summary>
    private ResumePoint? RestoreLocal()
    {
        if (ResumeCheckpoint.Find(_run.OutDir, _run.Log) is not { } found) return null;
        using var ckpt = found.Checkpoint;
        ResumeCheckpoint.LoadModel(_task.Model, ckpt, found.Path);
        var bytes = ResumeCheckpoint.OptimizerBytes(ckpt, found.Path, _optimizer);
        var position = SavedPosition(ckpt, found.Path);
        int localBatch = LocalBatch(position, found.Path);
        ResumeCheckpoint.LoadOptimizer(_optimizer, bytes, found.Path);
        if (ckpt.Section(TrainingCheckpoint.RngSection) is { } rng) ResumeCheckpoint.RestoreRng(rng, found.Path);
        if (ckpt.Section("task") is { } taskState) ResumeCheckpoint.Guard(found.Path, "task", () => _task.LoadState(taskState));
        return new ResumePoint(ckpt.Epoch, localBatch, position.OptimizerSteps, found.Path);
    }

    /// <summary>
    /// Several ranks: rank 0 reads the newest checkpoint and sends its state to the others (model,
    /// optimizer, task, each rank's RNG state), so only rank 0 needs the run folder. All ranks call it.
    /// </summary>
    private ResumePoint? RestoreShared()
    {
        var dist = _run.Distributed;
        var found = dist.IsMain ? ResumeCheckpoint.Find(_run.OutDir, _run.Log) : null;
        using var ckpt = found?.Checkpoint;
        // (found, epoch, step, optimizer steps, saved world size, saved batch size, saved accumulation)
        var position = ckpt is null ? default : SavedPosition(ckpt, found!.Value.Path);
        using var header = tensor(new long[] { ckpt is null ? 0 : 1, ckpt?.Epoch ?? 0, ckpt?.Step ?? 0, position.OptimizerSteps, position.WorldSize, position.BatchSize, position.Accumulation });
        dist.Broadcast(new[] { header });
        var h = header.data<long>().ToArray();
        if (h[0] == 0) return null;
        var saved = new SavedPositionInfo(h[2], h[3], (int)h[4], (int)h[5], (int)h[6]);
        int localBatch = LocalBatch(saved, found?.Path ?? "rank 0's checkpoint");   // same arithmetic on every rank: all agree or all throw

        byte[]? optimizerBytes = null;
        if (ckpt is not null)
        {
            ResumeCheckpoint.LoadModel(_task.Model, ckpt, found!.Value.Path);
            optimizerBytes = ResumeCheckpoint.OptimizerBytes(ckpt, found!.Value.Path, _optimizer);
            if (ckpt.Section("task") is { } taskState) ResumeCheckpoint.Guard(found.Value.Path, "task", () => _task.LoadState(taskState));
        }
        dist.Broadcast(_task.Model.state_dict().Values.ToArray());
        optimizerBytes = Collectives.BroadcastBytes(dist, optimizerBytes);
        // Every rank loads the same bytes, so a bad section fails on all of them alike, with the same one-line message as one process.
        string where = found?.Path ?? "rank 0's checkpoint";
        ResumeCheckpoint.LoadOptimizer(_optimizer, optimizerBytes, where);
        ShareTaskState();
        ShareRng(ckpt?.Section(TrainingCheckpoint.RngSection), where);
        return new ResumePoint((int)h[1], localBatch, saved.OptimizerSteps, found?.Path ?? "rank 0's checkpoint");
    }

    /// <summary>Rank 0's task state (e.g. CompRess's queue) to every rank, through the task's own SaveState/LoadState.</summary>
    private void ShareTaskState()
    {
        var dist = _run.Distributed;
        var section = _task.SaveState();
        if (section is null) return;
        var names = section.Tensors.Keys.Order(StringComparer.Ordinal).ToArray();
        dist.Broadcast(names.Select(n => section.Tensors[n]).ToArray());
        string json = System.Text.Encoding.UTF8.GetString(Collectives.BroadcastBytes(dist, dist.IsMain ? System.Text.Encoding.UTF8.GetBytes(section.Json) : null));
        // The section's tensors belong to the task (CompRess hands out its live queue): updated in place, never disposed here.
        if (!dist.IsMain) _task.LoadState(new CheckpointSection { Json = json, Tensors = section.Tensors });
    }

    /// <summary>Rank r continues rank r's saved random stream; ranks the checkpoint did not have start from seed + rank.</summary>
    private void ShareRng(CheckpointSection? rng, string where)
    {
        var dist = _run.Distributed;
        Tensor? states = null;
        try
        {
            bool valid = true;
            long stateBytes;
            using (var current = random.get_rng_state()) stateBytes = current.shape[0];
            if (rng is not null && rng.Tensors.TryGetValue(TorchCpuRng, out var first))
            {
                var rows = new List<Tensor> { first };
                for (int r = 1; rng.Tensors.TryGetValue(RankRngKey(r), out var t); r++) rows.Add(t);
                // libtorch aborts the process on a state of another size: rank 0 checks, and every rank refuses together.
                valid = rows.All(t => t.dtype == ScalarType.Byte && t.dim() == 1 && t.shape[0] == stateBytes);
                if (valid) states = stack(rows);                                       // (saved ranks, state bytes)
            }
            using var shape = tensor(new long[] { valid ? states?.shape[0] ?? 0 : -1, states?.shape[1] ?? 0 });
            dist.Broadcast(new[] { shape });
            var s = shape.data<long>().ToArray();
            if (s[0] < 0)
                throw new CheckpointFormatException($"{where}: an RNG state is not the {stateBytes} bytes of libtorch's CPU generator (corrupt or crafted file); resume from another checkpoint or start a new run.");
            if (s[0] == 0)
            {
                manual_seed(_opt.Seed + dist.Rank);
                return;
            }
            states ??= empty(new[] { s[0], s[1] }, ScalarType.Byte);
            dist.Broadcast(new[] { states });
            if (dist.Rank < s[0])
            {
                using var mine = states[dist.Rank].clone();
                random.set_rng_state(mine);
            }
            else manual_seed(_opt.Seed + dist.Rank);
        }
        finally { states?.Dispose(); }
    }

    private const string TorchCpuRng = "torch_cpu";
    private static string RankRngKey(int rank) => $"torch_cpu_rank{rank}";

    /// <summary>This rank's generator state, with every other rank's beside it on rank 0 ("torch_cpu" is rank 0's, as in one process).</summary>
    private CheckpointSection CaptureRng()
    {
        var section = TrainingCheckpoint.CaptureTorchRng();
        var dist = _run.Distributed;
        if (dist.WorldSize == 1) return section;
        using var all = dist.AllGather(section.Tensors[TorchCpuRng]);                 // (W, state bytes)
        if (dist.IsMain)
            for (int r = 1; r < dist.WorldSize; r++)
            {
                using var row = all[r];
                section.Tensors[RankRngKey(r)] = row.clone();
            }
        return section;
    }

    private readonly record struct SavedPositionInfo(long Step, long OptimizerSteps, int WorldSize, int BatchSize, int Accumulation);

    private SavedPositionInfo SavedPosition(TrainingCheckpoint ckpt, string path)
    {
        long steps = 0;
        long? savedBatches = null;
        int world = _run.Distributed.WorldSize, batch = _opt.BatchSize, accum = _accum;
        if (ckpt.Section(TrainingCheckpoint.SchedulerSection) is { } sched)
        {
            try
            {
                using var doc = JsonDocument.Parse(sched.Json);
                var root = doc.RootElement;
                steps = root.GetProperty("optimizer_steps").GetInt64();
                accum = root.GetProperty("accumulation").GetInt32();
                // Checkpoints from before data parallelism carry neither: they were single-process runs of this batch size.
                if (root.TryGetProperty("world_size", out var w)) world = w.GetInt32();
                if (root.TryGetProperty("batch_size", out var b)) batch = b.GetInt32();
                if (root.TryGetProperty("batches_per_epoch", out var e)) savedBatches = e.GetInt64();
            }
            catch (Exception ex) when (ex is JsonException or KeyNotFoundException or InvalidOperationException or FormatException)
            {
                throw new CheckpointFormatException($"{path}: the scheduler section is not the JSON a checkpoint of this program holds ({TerminalText.Safe(ex.Message, 200)}): the file is corrupt or crafted; resume from another checkpoint or start a new run.", ex);
            }
            if (steps < 0 || accum < 1 || world < 1 || batch < 1 || savedBatches < 1)
                throw new CheckpointFormatException($"{path}: the scheduler section holds impossible values (optimizer_steps {steps}, accumulation {accum}, world_size {world}, batch_size {batch}, batches_per_epoch {savedBatches}): the file is corrupt or crafted.");
        }
        // A mid-epoch checkpoint is written before the epoch's last batch (the end of an epoch is saved as the next epoch, step 0).
        if (ckpt.Step > 0 && savedBatches is { } n && ckpt.Step >= n)
            throw new CheckpointFormatException($"{path}: step {ckpt.Step} is past the end of its epoch of {n} batches: the file is corrupt or crafted; resume from another checkpoint or start a new run.");
        return new SavedPositionInfo(ckpt.Step, steps, world, batch, accum);
    }

    /// <summary>
    /// The saved batch index in this run's batches: the first Step x batch x world images of the
    /// epoch's shuffled order are done whatever the number of ranks (rank r reads positions r, r + W, ...),
    /// so the run continues at the same image when that count is a whole number of this run's
    /// optimizer steps. <paramref name="where"/> names the checkpoint in the refusals.
    /// </summary>
    private int LocalBatch(SavedPositionInfo saved, string where)
    {
        if (saved.Step == 0) return 0;
        long images;
        // A crafted step near 2^62 would wrap around to a plausible position.
        try { images = checked(saved.Step * saved.BatchSize * saved.WorldSize); }
        catch (OverflowException)
        {
            throw new CheckpointFormatException($"{where}: step {saved.Step} of {saved.BatchSize} x {saved.WorldSize} images is past any epoch: the file is corrupt or crafted; resume from another checkpoint or start a new run.");
        }
        long perBatch = (long)_opt.BatchSize * _run.Distributed.WorldSize;
        if (images % perBatch != 0 || (images / perBatch) % _accum != 0)
            throw new CheckpointFormatException(
                $"{where}: the checkpoint stopped {images} images into an epoch ({saved.Step} batches of {saved.BatchSize} x {saved.WorldSize} process(es), accumulation {saved.Accumulation}); "
                + $"with batch {_opt.BatchSize} x {_run.Distributed.WorldSize} process(es) and {_accum} accumulation steps that is not a whole optimizer step. "
                + "Resume with the same --batch-size, --effective-batch and number of processes, or from an end-of-epoch checkpoint.");
        if (images / perBatch >= _loader.BatchesPerEpoch)
            throw new CheckpointFormatException(
                $"{where}: the checkpoint stopped {images} images into an epoch, past the end of this run's epochs of {_loader.BatchesPerEpoch} batches of {perBatch} images "
                + "(a corrupt or crafted file, or a smaller data set): resume from an end-of-epoch checkpoint or start a new run.");
        return (int)(images / perBatch);
    }

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
