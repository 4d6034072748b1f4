using System.Text.Json;
using AttnDistill.Checkpoints;
using AttnDistill.Distributed;
using AttnDistill.Tensors;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace AttnDistill.Training;

/// <summary>
/// The trainer's checkpoint protocol, kept apart from its loop: what a checkpoint holds (model,
/// optimizer bytes, schedule position, every rank's RNG state, the task's own state) and how a
/// resume reads it back, one process or several (rank 0 reads the file and sends the state to the
/// others, and the position inside an epoch is converted when the number of ranks changed). Every
/// section is read as untrusted input (<see cref="ResumeCheckpoint"/>).
/// </summary>
internal sealed class TrainerCheckpoints
{
    private readonly ITrainingTask _task;
    private readonly OptimizerHelper _optimizer;
    private readonly TrainerOptions _opt;
    private readonly TrainerRun _run;
    private readonly int _accum;
    private readonly double _peakLr;
    private readonly int _batchesPerEpoch;

    public TrainerCheckpoints(ITrainingTask task, OptimizerHelper optimizer, TrainerOptions options, TrainerRun run, int accumulation, double peakLr, int batchesPerEpoch)
    {
        _task = task;
        _optimizer = optimizer;
        _opt = options;
        _run = run;
        _accum = accumulation;
        _peakLr = peakLr;
        _batchesPerEpoch = batchesPerEpoch;
    }

    /// <summary>Restores the newest checkpoint of the run folder (every rank calls it); null when there is none.</summary>
    public ResumePoint? Restore() => _run.Distributed.WorldSize == 1 ? RestoreLocal() : RestoreShared();

    /// <summary>Writes checkpoint-EEEE[-BBBBBB].ckpt atomically on the main process; returns its path. Every rank calls it (RNG states are gathered).</summary>
    public string? Save(int epoch, int batch, long optimizerSteps)
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
                    optimizer_steps = optimizerSteps, accumulation = _accum, peak_lr = _peakLr, batches_per_epoch = _batchesPerEpoch,
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
        if (_opt.CheckpointHistory > 0) CheckpointFiles.Prune(_run.OutDir, _opt.CheckpointHistory, keep: path);
        _run.Log?.Invoke($"checkpoint written: {path}");
        return path;
    }

    /// <summary>Where a resumed run continues, in this run's batches.</summary>
    public readonly record struct ResumePoint(int Epoch, int Batch, long OptimizerSteps, string Path);

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
        if (images / perBatch >= _batchesPerEpoch)
            throw new CheckpointFormatException(
                $"{where}: the checkpoint stopped {images} images into an epoch, past the end of this run's epochs of {_batchesPerEpoch} batches of {perBatch} images "
                + "(a corrupt or crafted file, or a smaller data set): resume from an end-of-epoch checkpoint or start a new run.");
        return (int)(images / perBatch);
    }
}
