using System.Text.Json;
using AttnDistill.Checkpoints;
using AttnDistill.Data;
using AttnDistill.Data.Transforms;
using AttnDistill.Distributed;
using AttnDistill.Models;
using AttnDistill.Runs;
using AttnDistill.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace AttnDistill.Distillation;

/// <summary>What a finished distillation run reports (also written to metrics.json).</summary>
public sealed record DistillJobResult(TrainResult Train, string BackbonePth, string BackboneSafetensors, VitConfig StudentConfig);

/// <summary>
/// A whole distillation run: load the teacher, check the settings against it, build the student,
/// the loader and the trainer, train, then export the student backbone (backbone.pth with DINO
/// names, backbone.safetensors with its config) and metrics.json.
/// </summary>
public static class DistillJob
{
    /// <summary>
    /// Checks every setting (the cheap ones before the teacher is read), then loads the teacher and
    /// checks the pair; nothing heavy has run when this throws, and each message names its flag.
    /// </summary>
    public static (VisionTransformer Teacher, VitConfig Student) Prepare(DistillJobConfig cfg, Action<string>? log)
    {
        VitConfig student;
        try { student = cfg.Student.Validate(); }
        catch (ArgumentException ex) { throw new ArgumentException($"student (--student, --student-patch/-depth/-heads/-dim, --image-size): {ex.Message}", ex); }
        if (cfg.ProjectorLayers is < 0 or > 16)
            throw new ArgumentException($"--proj-layers must be in 0..16, got {cfg.ProjectorLayers}.");
        if (cfg.Workers < 0) throw new ArgumentException($"--workers must be >= 0, got {cfg.Workers}.");
        if (!(cfg.CropScaleMin is > 0 and <= 1)) throw new ArgumentException($"the crop scale minimum must be in (0, 1], got {cfg.CropScaleMin}.");
        if (cfg.Method == DistillationMethod.CompRess)
        {
            if (cfg.CompressQueue <= 0) throw new ArgumentException($"--compress-queue (CompRess memory bank size) must be positive, got {cfg.CompressQueue}: use e.g. 4096.");
            if (!(cfg.CompressTau > 0) || !double.IsFinite(cfg.CompressTau)) throw new ArgumentException($"--compress-tau (CompRess temperature) must be > 0, got {cfg.CompressTau}: use e.g. 0.04.");
        }
        cfg.Trainer.Validate();
        if (!Directory.Exists(cfg.DataRoot) && !File.Exists(cfg.DataRoot))
            throw new DirectoryNotFoundException($"--data {cfg.DataRoot}: no such folder.");
        if (!File.Exists(cfg.TeacherPath)) throw new FileNotFoundException($"--teacher {cfg.TeacherPath}: no such file.", cfg.TeacherPath);
        VisionTransformer teacher;
        try
        {
            // The teacher sees the student's crops: its position table is resampled to that size at load.
            (teacher, _) = VitCheckpointLoader.Load(cfg.TeacherPath, new VitInferenceOptions { NumHeads = cfg.TeacherHeads, Resampling = cfg.TeacherPosEmbedResample }, imageSize: student.ImageSize, info: log);
        }
        catch (Exception ex) when (ex is ArgumentException or CheckpointFormatException)
        {
            string what = $"--teacher {cfg.TeacherPath}{(cfg.TeacherHeads is { } h ? $" with --teacher-heads {h}" : "")}";
            string message = ex.Message.StartsWith(cfg.TeacherPath, StringComparison.Ordinal) ? $"--teacher {ex.Message}" : $"{what}: {ex.Message}";
            throw ex is ArgumentException ? new ArgumentException(message, ex) : new CheckpointFormatException(message, ex);
        }
        try
        {
            var t = teacher.Config;
            if (student.ImageSize % t.PatchSize != 0)
                throw new ArgumentException($"the teacher's patch size {t.PatchSize} does not divide --image-size {student.ImageSize}: pick an image size that both patch sizes divide.");
            cfg.Loss.Validate(student.NumHeads, t.NumHeads, student.GridSize, student.ImageSize / t.PatchSize,
                student.EmbedDim, t.EmbedDim, cfg.ProjectorLayers > 0, student.Depth, t.Depth);
            return (teacher, student);
        }
        catch
        {
            teacher.Dispose();
            throw;
        }
    }

    /// <summary>Trains on <see cref="RunContext.Device"/>: teacher, student, projector, batches, losses, optimizer state and the CompRess queue all live there.</summary>
    public static DistillJobResult Run(DistillJobConfig cfg, RunContext ctx)
    {
        var dist = ctx.Distributed;
        var log = ctx.Log;
        if (dist.IsMain) Directory.CreateDirectory(ctx.OutDir);   // only rank 0 writes the run folder
        manual_seed(cfg.Trainer.Seed);
        var (teacher, studentConfig) = Prepare(cfg, log);
        using var _ = teacher;
        // Built on the host (the seeded init is the same on every device), then moved.
        using var student = new DistillStudent(studentConfig, teacher.Config.EmbedDim, cfg.ProjectorLayers);
        teacher.to(ctx.Device);
        student.to(ctx.Device);
        var loader = TrainingData.Loader(cfg.DataRoot, studentConfig.ImageSize, cfg.Trainer, cfg.Workers, dist, log, cfg.CropScaleMin);
        var dataset = loader.Dataset;
        log?.Invoke($"data: {dataset.Count} images, {dataset.ClassNames.Count} classes, {loader.BatchesPerEpoch} batches per epoch");
        using var cache = cfg.TeacherCacheDir is null ? null : OpenCache(cfg, teacher, studentConfig, loader, dist, log);
        var task = new DistillationTask(teacher, student, cfg.Loss, cfg.Method, cfg.CompressQueue, cfg.CompressTau, cfg.Trainer.Seed, cache);
        var filled = new List<int>();

        var trainer = new Trainer(task, loader, cfg.Trainer with { Precision = cfg.Precision }, new TrainerRun
        {
            Context = ctx, Resume = cfg.Resume, ModelConfig = studentConfig,
            EpochEnd = e =>
            {
                if (cache?.CompleteEpoch(e.Epoch) is long bytes)
                {
                    filled.Add(e.Epoch);
                    log?.Invoke($"teacher cache: epoch {e.Epoch + 1} filled ({bytes / 1e6:F1} MB); later runs read it instead of running the teacher");
                }
            },
        });
        log?.Invoke($"lr {trainer.PeakLr:G4} (peak), accumulation {trainer.AccumulationSteps}, teacher {Describe(teacher.Config)}, student {Describe(studentConfig)} + P{cfg.ProjectorLayers}, device {ctx.DeviceName}");
        var result = trainer.Run();

        string pth = Path.Combine(ctx.OutDir, "backbone.pth"), st = Path.Combine(ctx.OutDir, "backbone.safetensors");
        if (dist.IsMain)
        {
            BackboneExport.SavePth(student.Backbone, pth);
            BackboneExport.SaveSafetensors(student.Backbone, st, studentConfig);
            MetricsFile.Merge(Path.Combine(ctx.OutDir, "metrics.json"), "distill", new Dictionary<string, object>
            {
                ["epochs"] = result.EpochsDone, ["optimizer_steps"] = result.OptimizerSteps, ["skipped_batches"] = result.SkippedBatches,
                ["final_loss"] = result.LastEpochLoss, ["images_per_s"] = result.ImagesPerSecond, ["interrupted"] = result.Interrupted,
                ["unreadable_images"] = loader.UnreadableCount,
            });
            if (cache is not null)
                MetricsFile.Merge(Path.Combine(ctx.OutDir, "metrics.json"), "teacher_cache", new Dictionary<string, object>
                {
                    ["dir"] = Path.GetFullPath(cfg.TeacherCacheDir!), ["dtype"] = cache.Header.Dtype, ["bytes_per_epoch"] = cache.EpochBytes,
                    ["epochs_filled_by_this_run"] = filled.Select(e => e + 1).ToArray(), ["epochs_in_cache"] = cache.FilledEpochs().Select(e => e + 1).ToArray(),
                });
        }
        ctx.RecordRun("distill", cfg.Precision == ComputePrecision.BFloat16 ? "bf16" : "fp32");
        return new DistillJobResult(result, pth, st, studentConfig);
    }

    /// <summary>What `attndistill teacher-cache` did: epochs filled by this call and held by the cache (0-based).</summary>
    public sealed record CacheFillResult(IReadOnlyList<int> Filled, IReadOnlyList<int> InCache, long BytesPerEpoch, double ImagesPerSecond);

    /// <summary>
    /// Fills --teacher-cache for every epoch of the run the same settings would train, without
    /// training: the loader yields the same seeded stream (the cache checks each image's fingerprint
    /// when a distill run reads it). Epochs already filled are left as they are.
    /// </summary>
    public static CacheFillResult FillTeacherCache(DistillJobConfig cfg, RunContext ctx)
    {
        if (cfg.TeacherCacheDir is null) throw new ArgumentException("--teacher-cache is required: the folder to fill.");
        var log = ctx.Log;
        manual_seed(cfg.Trainer.Seed);
        var (teacher, studentConfig) = Prepare(cfg, log);
        using var _ = teacher;
        using var student = new DistillStudent(studentConfig, teacher.Config.EmbedDim, cfg.ProjectorLayers);   // never run: the task wants one
        teacher.to(ctx.Device);
        var loader = TrainingData.Loader(cfg.DataRoot, studentConfig.ImageSize, cfg.Trainer, cfg.Workers, ctx.Distributed, log, cfg.CropScaleMin);
        using var cache = OpenCache(cfg, teacher, studentConfig, loader, ctx.Distributed, log);
        var task = new DistillationTask(teacher, student, cfg.Loss, cfg.Method, cfg.CompressQueue, cfg.CompressTau, cfg.Trainer.Seed, cache);
        var filled = new List<int>();
        long images = 0;
        var watch = System.Diagnostics.Stopwatch.StartNew();
        for (int epoch = 0; epoch < cfg.Trainer.Epochs; epoch++)
        {
            if (cache.Holds(epoch)) continue;
            int batchIndex = 0;
            foreach (var batch in DeviceFeed.ToDevice(loader.Epoch(epoch, 0, ctx.Stop), ctx.Device))
            {
                using (batch) task.FillCache(batch);
                images += batch.Count;
                ctx.Progress.Training(new TrainProgress(epoch, cfg.Trainer.Epochs, ++batchIndex, loader.BatchesPerEpoch, 0,
                    new Dictionary<string, double>(), images / Math.Max(1e-9, watch.Elapsed.TotalSeconds)));
            }
            // A stop leaves the epoch's partial file, which the next call (or distill run) continues.
            if (ctx.Stop.IsCancellationRequested) break;
            cache.CompleteEpoch(epoch);
            filled.Add(epoch);
            log?.Invoke($"teacher cache: epoch {epoch + 1} filled ({cache.EpochBytes / 1e6:F1} MB)");
        }
        return new CacheFillResult(filled, cache.FilledEpochs(), cache.EpochBytes, images / Math.Max(1e-9, watch.Elapsed.TotalSeconds));
    }

    /// <summary>Opens (or creates) the teacher-target cache for this run's teacher, data, stream and loss targets; refuses one filled for another.</summary>
    static TeacherCache.TeacherTargetCache OpenCache(DistillJobConfig cfg, VisionTransformer teacher, VitConfig student, DataLoader loader, Distributed.IDistributedContext dist, Action<string>? log)
    {
        if (dist.WorldSize > 1)
            throw new ArgumentException($"--teacher-cache runs in one process (this run has {dist.WorldSize}): fill and read it without mpirun.");
        var (feature, attention, valueNorms) = TeacherCache.TeacherCacheHeader.Targets(teacher.Config, student.ImageSize, cfg.Loss, cfg.Method);
        var header = new TeacherCache.TeacherCacheHeader
        {
            TeacherSha256 = TeacherCache.TeacherCacheHeader.TeacherHash(teacher), TeacherFile = Path.GetFullPath(cfg.TeacherPath),
            Data = Path.GetFullPath(cfg.DataRoot), Images = loader.Dataset.Count, ImageSize = student.ImageSize,
            Crop = $"RandomResizedCrop({student.ImageSize}, scale=({cfg.CropScaleMin.ToString("R", System.Globalization.CultureInfo.InvariantCulture)}, 1)) + horizontal flip",
            Seed = cfg.Trainer.Seed, BatchSize = loader.Options.BatchSize, Dtype = cfg.TeacherCacheDtype,
            FeatureShape = feature, AttentionShape = attention, ValueNorms = valueNorms,
            RowsPerEpoch = loader.Options.DropLast ? loader.BatchesPerEpoch * loader.Options.BatchSize : loader.SamplesPerEpoch,
        };
        var cache = TeacherCache.TeacherTargetCache.Open(cfg.TeacherCacheDir!, header);
        var held = cache.FilledEpochs();
        log?.Invoke($"teacher cache {cfg.TeacherCacheDir}: {cache.EpochBytes / 1e6:F1} MB per epoch ({header.Dtype}); " +
                    (held.Count == 0 ? "empty: this run fills it" : $"epochs {string.Join(", ", held.Select(e => e + 1))} are read (the teacher does not run for them), others are filled"));
        return cache;
    }

    public static string Describe(VitConfig c) =>
        $"ViT depth {c.Depth} dim {c.EmbedDim} heads {c.NumHeads} patch {c.PatchSize} image {c.ImageSize} ({c.PosEmbed} PE)";
}
