using TorchSharp;
using AttnDistill.Checkpoints;
using AttnDistill.Data.Mixing;
using AttnDistill.Runs;
using AttnDistill.Models;
using AttnDistill.Training;

namespace AttnDistill.Evaluation;

/// <summary>Settings of a fine-tuning run.</summary>
public sealed record FinetuneJobConfig
{
    public required string Checkpoint { get; init; }
    public required string DataRoot { get; init; }
    public int ImageSize { get; init; } = 224;
    /// <summary>--pos-embed-resample: null = the rule of the checkpoint's source.</summary>
    public Models.PosEmbedRule? PosEmbedResample { get; init; }
    /// <summary>--model-ema: keep an exponential moving average of the weights (timm's ModelEmaV2, DeiT/iBOT) and evaluate it too.</summary>
    public bool ModelEma { get; init; }
    /// <summary>--model-ema-decay (DeiT and iBOT: 0.99996).</summary>
    public double ModelEmaDecay { get; init; } = 0.99996;
    public required TrainerOptions Trainer { get; init; }
    /// <summary>Layer-wise lr decay (1 = off; MAE: 0.75 for ViT-B, 0.65 ViT-L).</summary>
    public double LayerDecay { get; init; } = 0.75;
    /// <summary>Stochastic depth rate of the last block (MAE: 0.1).</summary>
    public double DropPath { get; init; } = 0.1;
    public double LabelSmoothing { get; init; } = 0.1;
    /// <summary>Mixup/CutMix (MAE recipes: --mixup 0.8 --cutmix 1.0); null: off. Its LabelSmoothing is replaced by <see cref="LabelSmoothing"/>.</summary>
    public MixupOptions? Mixup { get; init; } = new();
    /// <summary>--reprob: random-erasing probability (MAE: 0.25; 0 = off).</summary>
    public double EraseProbability { get; init; } = 0.25;
    /// <summary>--remode.</summary>
    public ErasingMode EraseMode { get; init; } = ErasingMode.Pixel;
    /// <summary>--recount.</summary>
    public int EraseCount { get; init; } = 1;
    /// <summary>--global-pool (MAE's default) or the CLS token (--cls-token).</summary>
    public bool GlobalPool { get; init; } = true;
    public int Workers { get; init; } = 2;
    public int EvalBatchSize { get; init; } = 256;
    /// <summary>Validate every this many epochs (and after the last).</summary>
    public int EvalEvery { get; init; } = 1;
    public LabelSelection Labels { get; init; } = LabelSelection.All;
    public bool Resume { get; init; }
}

/// <summary>What a fine-tuning run reports.</summary>
public sealed record FinetuneJobResult(ClassificationResult Final, ClassificationResult Best, int BestEpoch, TrainResult Train, string ModelPath);

/// <summary>
/// Full fine-tuning (docs/METHOD.md, section 5.4): the backbone plus a linear head, AdamW with layer-wise
/// lr decay, drop path and label smoothing, RandomResizedCrop + flip; top-1/top-5 on the val
/// split after every <see cref="FinetuneJobConfig.EvalEvery"/> epochs (log.txt, TensorBoard) and
/// at the end (metrics.json). The fine-tuned model is saved with timm's names as finetuned.pth.
/// </summary>
public static class FinetuneJob
{
    /// <summary>Trains on <see cref="RunContext.Device"/>: backbone, head, batches, loss, optimizer state and the validation passes.</summary>
    public static FinetuneJobResult Run(FinetuneJobConfig cfg, RunContext ctx)
    {
        var dist = ctx.Distributed;
        var log = ctx.Log;
        var stop = ctx.Stop;
        cfg.Labels.Validate();
        if (cfg.DropPath is < 0 or >= 1) throw new ArgumentException($"--drop-path must be in [0, 1), got {cfg.DropPath}.");
        if (cfg.EvalEvery <= 0) throw new ArgumentException($"--eval-every must be positive, got {cfg.EvalEvery}.");
        var (trainSet, valSet) = EvaluationData.Open(cfg.DataRoot, cfg.Labels);
        // The labelled subset goes into the run, in the format --label-file reads, so it can be reused.
        if (ctx.IsMain && trainSet is AttnDistill.Data.SubsetDataset subset) LabelSelection.SaveInRun(subset.Source, subset.Indices, ctx.OutDir);
        TorchSharp.torch.manual_seed(cfg.Trainer.Seed);
        int classes = trainSet.ClassNames.Count;
        using var model = Build(cfg, classes, log);
        model.to(ctx.Device);
        var mixup = cfg.Mixup is { Active: true } m ? new Mixup(m with { LabelSmoothing = cfg.LabelSmoothing }, classes) : null;
        if (mixup is not null && cfg.Trainer.BatchSize % 2 != 0)
            throw new ArgumentException($"Mixup/CutMix mixes each image with its mirror in the batch: --batch-size must be even, got {cfg.Trainer.BatchSize}; or turn them off with --mixup 0 --cutmix 0.");
        var erasing = cfg.EraseProbability > 0 ? new RandomErasing(cfg.EraseProbability, cfg.EraseMode, cfg.EraseCount) : null;
        using var emaModel = cfg.ModelEma ? Build(cfg, classes, null) : null;
        emaModel?.to(ctx.Device);
        var ema = emaModel is null ? null : new ModelEma(emaModel, model, cfg.ModelEmaDecay);
        var task = new FinetuneTask(model, cfg.LayerDecay, cfg.LabelSmoothing, erasing, mixup, ema);
        var loader = TrainingData.Loader(trainSet, cfg.ImageSize, cfg.Trainer, cfg.Workers, dist, log, scaleMin: 0.08);
        var valLoader = EvaluationData.EvalLoader(valSet, cfg.ImageSize, cfg.EvalBatchSize, cfg.Workers, log);
        ClassificationResult? last = null, best = null, emaLast = null, emaBest = null;
        int bestEpoch = -1, emaBestEpoch = -1;
        var trainer = new Trainer(task, loader, cfg.Trainer, new TrainerRun
        {
            Context = ctx, Resume = cfg.Resume, ModelConfig = model.Backbone.Config,
            EpochEnd = e =>
            {
                if (!e.Last && (e.Epoch + 1) % cfg.EvalEvery != 0) return;
                last = ClassifierEvaluation.Evaluate(model, valLoader, cancel: stop);
                if (best is null || last.Top1 > best.Top1) (best, bestEpoch) = (last, e.Epoch);
                e.Log?.Write("val", e.Epoch, new Dictionary<string, object> { ["kind"] = "finetune", ["epoch"] = e.Epoch, ["top1"] = last.Top1, ["top5"] = last.Top5 });
                log?.Invoke($"epoch {e.Epoch}: val top-1 {last.Top1:F2} %, top-5 {last.Top5:F2} %");
                if (emaModel is null) return;
                emaLast = ClassifierEvaluation.Evaluate(emaModel, valLoader, cancel: stop);
                if (emaBest is null || emaLast.Top1 > emaBest.Top1) (emaBest, emaBestEpoch) = (emaLast, e.Epoch);
                e.Log?.Write("val_ema", e.Epoch, new Dictionary<string, object> { ["kind"] = "finetune-ema", ["epoch"] = e.Epoch, ["top1"] = emaLast.Top1, ["top5"] = emaLast.Top5 });
                log?.Invoke($"epoch {e.Epoch}: model EMA val top-1 {emaLast.Top1:F2} %, top-5 {emaLast.Top5:F2} %");
            },
        });
        var train = trainer.Run();
        if (train.Interrupted) throw new TrainingStoppedException($"fine-tuning stopped after {train.EpochsDone} epoch(s), checkpoint written; run again with --resume to finish.");
        // A resumed run that had nothing left to train still reports the model's accuracy.
        last ??= ClassifierEvaluation.Evaluate(model, valLoader, cancel: stop);
        if (best is null) (best, bestEpoch) = (last, train.EpochsDone - 1);
        if (emaModel is not null)
        {
            emaLast ??= ClassifierEvaluation.Evaluate(emaModel, valLoader, cancel: stop);
            if (emaBest is null) (emaBest, emaBestEpoch) = (emaLast, train.EpochsDone - 1);
        }
        string path = Path.Combine(ctx.OutDir, "finetuned.pth");
        if (dist.IsMain)
        {
            BackboneExport.SavePth(model.ExportStateDict(), path);
            if (emaModel is not null) BackboneExport.SavePth(emaModel.ExportStateDict(), Path.Combine(ctx.OutDir, "finetuned_ema.pth"));
            MetricsFile.Merge(Path.Combine(ctx.OutDir, "metrics.json"), "finetune", new Dictionary<string, object>
            {
                ["top1"] = last.Top1, ["top5"] = last.Top5, ["best_top1"] = best.Top1, ["best_epoch"] = bestEpoch,
                ["epochs"] = train.EpochsDone, ["checkpoint"] = cfg.Checkpoint, ["labels"] = cfg.Labels.Describe(),
                ["train_images"] = trainSet.Count, ["val_images"] = valSet.Count, ["layer_decay"] = cfg.LayerDecay, ["drop_path"] = cfg.DropPath,
                ["head"] = cfg.GlobalPool ? "global_pool (mean of patch tokens + fc_norm)" : "cls_token (normalized CLS)",
                ["mixup"] = mixup is null ? "off" : $"mixup {cfg.Mixup!.MixupAlpha}, cutmix {cfg.Mixup.CutmixAlpha}, prob {cfg.Mixup.Prob}, switch {cfg.Mixup.SwitchProb}, mode {cfg.Mixup.Mode.ToString().ToLowerInvariant()}",
                ["random_erasing"] = erasing is null ? "off" : $"p {cfg.EraseProbability}, {cfg.EraseMode.ToString().ToLowerInvariant()}, count {cfg.EraseCount}",
                ["model_ema"] = emaModel is null ? "off" : $"decay {cfg.ModelEmaDecay.ToString("R", System.Globalization.CultureInfo.InvariantCulture)}",
            });
            if (emaLast is not null && emaBest is not null)
                MetricsFile.Merge(Path.Combine(ctx.OutDir, "metrics.json"), "finetune_ema", new Dictionary<string, object>
                {
                    ["top1"] = emaLast.Top1, ["top5"] = emaLast.Top5, ["best_top1"] = emaBest.Top1, ["best_epoch"] = emaBestEpoch, ["decay"] = cfg.ModelEmaDecay,
                });
        }
        ctx.RecordRun("finetune", cfg.Trainer.Precision == ComputePrecision.BFloat16 ? "bf16" : "fp32");
        return new FinetuneJobResult(last, best, bestEpoch, train, path);
    }

    /// <summary>
    /// The checkpoint's ViT rebuilt with drop path, plus a head: a fresh one, or the file's own when
    /// it is a fine-tuned classifier (timm/MAE names fc_norm.*, head.*) with this data's class count,
    /// so a fine-tuned model can be fine-tuned further. A global-pool classifier needs --global-pool.
    /// </summary>
    static FinetuneModel Build(FinetuneJobConfig cfg, int classes, Action<string>? log)
    {
        var (loaded, loadedConfig, classifier) = VitCheckpointLoader.LoadWithClassifier(cfg.Checkpoint, new VitInferenceOptions { Resampling = cfg.PosEmbedResample }, imageSize: cfg.ImageSize, info: log);
        try
        {
            using var _ = loaded;
            bool fileIsGlobalPool = classifier.ContainsKey("fc_norm.weight");
            if (fileIsGlobalPool && !cfg.GlobalPool)
                throw new ArgumentException($"--checkpoint {cfg.Checkpoint} is a classifier fine-tuned with global pooling (fc_norm.*, no final norm): fine-tune it with --global-pool, not --cls-token.");
            var vit = new VisionTransformer(loadedConfig with { DropPathRate = cfg.DropPath });
            StateDictLoader.Load(vit, loaded.state_dict());
            var model = new FinetuneModel(vit, classes, cfg.GlobalPool);
            var target = model.state_dict();
            var copied = new List<string>();
            using (TorchSharp.torch.no_grad())
            {
                if (fileIsGlobalPool)
                    foreach (string k in new[] { "fc_norm.weight", "fc_norm.bias" })
                        if (classifier.TryGetValue(k, out var t) && target.TryGetValue(k, out var dst) && dst.shape.SequenceEqual(t.shape)) { dst.copy_(t); copied.Add(k); }
                if (classifier.TryGetValue("head.weight", out var w) && classifier.TryGetValue("head.bias", out var b))
                {
                    if (w.shape.SequenceEqual(target["head.weight"].shape) && b.shape.SequenceEqual(target["head.bias"].shape))
                    {
                        target["head.weight"].copy_(w);
                        target["head.bias"].copy_(b);
                        copied.Add("head");
                    }
                    else log?.Invoke($"head: the checkpoint's classifier has {w.shape[0]} classes, the data {classes}: a new head is trained (trunc-normal 2e-5, as MAE)");
                }
            }
            if (copied.Count > 0) log?.Invoke($"fine-tuned classifier in the checkpoint: {string.Join(", ", copied)} loaded, training continues from it");
            return model;
        }
        finally
        {
            foreach (var t in classifier.Values) t.Dispose();
        }
    }
}
