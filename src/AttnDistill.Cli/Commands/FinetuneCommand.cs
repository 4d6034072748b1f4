using System.CommandLine;
using AttnDistill.Evaluation;
using AttnDistill.Training;

namespace AttnDistill.Cli.Commands;

/// <summary>`attndistill finetune`: full fine-tuning of a backbone checkpoint with a linear head.</summary>
public static class FinetuneCommand
{
    public static Command Create()
    {
        var cmd = new Command("finetune", "Fine-tune a backbone end to end with a linear head as MAE's main_finetune does (AdamW, layer-wise lr decay, drop path, Mixup/CutMix with soft targets, label smoothing, random erasing, global pooling); top-1/top-5 on the val split; writes metrics.json and finetuned.pth.");
        var eval = new EvaluationOptionSet(evalLayer: false);
        eval.AddTo(cmd);
        var layerDecay = new Option<double>("--layer-decay") { Description = "Layer-wise lr decay (1 = off; MAE: 0.75 ViT-B, 0.65 ViT-L).", DefaultValueFactory = _ => 0.75 };
        var dropPath = new Option<double>("--drop-path") { Description = "Stochastic depth rate (MAE: 0.1).", DefaultValueFactory = _ => 0.1 };
        var smoothing = new Option<double>("--smoothing") { Description = "Label smoothing (MAE: 0.1).", DefaultValueFactory = _ => 0.1 };
        var evalEvery = TrainerOptionSet.Positive("--eval-every", "Validate every N epochs (and after the last).", 1);
        var evalBatch = TrainerOptionSet.Positive("--eval-batch-size", "Images per forward pass when validating.", 256);
        var mixup = new Option<double>("--mixup") { Description = "Mixup alpha; 0 = off (MAE's fine-tuning recipes: 0.8).", DefaultValueFactory = _ => 0.8 };
        var cutmix = new Option<double>("--cutmix") { Description = "CutMix alpha; 0 = off (MAE's recipes: 1.0).", DefaultValueFactory = _ => 1.0 };
        var cutmixMinMax = new NumberListOption<double>("--cutmix-minmax", "CutMix box side min and max as fractions of the image (overrides the alpha; timm):", count: 2);
        var mixupProb = new Option<double>("--mixup-prob") { Description = "Probability of mixing a batch (or element) at all.", DefaultValueFactory = _ => 1.0 };
        var mixupSwitch = new Option<double>("--mixup-switch-prob") { Description = "Probability of CutMix instead of Mixup when both are on.", DefaultValueFactory = _ => 0.5 };
        var mixupMode = new Option<string>("--mixup-mode") { Description = "Draw mixing parameters per batch, pair or elem.", DefaultValueFactory = _ => "batch" };
        mixupMode.AcceptOnlyFromAmong("batch", "pair", "elem");
        var reprob = new Option<double>("--reprob") { Description = "Random erasing probability per image, after normalization (MAE: 0.25; 0 = off).", DefaultValueFactory = _ => 0.25 };
        var remode = new Option<string>("--remode") { Description = "Random erasing fill: pixel (per-pixel normal noise, MAE), rand (per-channel) or const (zeros).", DefaultValueFactory = _ => "pixel" };
        remode.AcceptOnlyFromAmong("pixel", "rand", "const");
        var recount = TrainerOptionSet.Positive("--recount", "Random erasing: up to this many boxes per image.", 1);
        var globalPool = new Option<bool>("--global-pool") { Description = "Head on the mean of the patch tokens through fc_norm (MAE's default); --cls-token for the normalized CLS token (DINO, DeiT).", DefaultValueFactory = _ => true };
        var clsToken = new Option<bool>("--cls-token") { Description = "Head on the normalized CLS token instead of global pooling." };
        var modelEma = new Option<bool>("--model-ema") { Description = "Keep an exponential moving average of the weights (timm's ModelEmaV2, as DeiT and iBOT), updated after every optimizer step, evaluated beside the model each epoch and saved as finetuned_ema.pth." };
        var modelEmaDecay = new Option<double>("--model-ema-decay") { Description = "EMA decay per optimizer step (DeiT, iBOT: 0.99996).", DefaultValueFactory = _ => 0.99996 };
        var precision = TrainerOptionSet.PrecisionOption();
        foreach (var o in new Option[] { modelEma, modelEmaDecay, layerDecay, dropPath, smoothing, mixup, cutmix, cutmixMinMax, mixupProb, mixupSwitch, mixupMode, reprob, remode, recount, globalPool, clsToken, precision, evalEvery, evalBatch }) cmd.Options.Add(o);
        // MAE's fine-tuning recipe: blr 1e-3 (ViT-S/B scale), 5 warm-up epochs, AdamW betas (0.9, 0.999), wd 0.05, min lr 1e-6.
        var trainer = new TrainerOptionSet(new TrainerOptions { Epochs = 100, WarmupEpochs = 5, BatchSize = 64, BaseLr = 1e-3, WeightDecay = 0.05, Beta2 = 0.999, MinLr = 1e-6 }, blrSweep: true);
        trainer.AddTo(cmd);
        cmd.SetAction((parsed, ct) => Run.Guarded(parsed, ct, stop =>
        {
            string output = parsed.GetValue(trainer.Out)!;
            var job = new FinetuneJobConfig
            {
                Checkpoint = ZooDownloads.Resolve(parsed.GetValue(eval.Checkpoint)!, "--checkpoint", stop), DataRoot = parsed.GetValue(eval.Data)!,
                ImageSize = parsed.GetValue(eval.ImageSize), Trainer = trainer.Read(parsed) with { Precision = TrainerOptionSet.ReadPrecision(parsed, precision) }, LayerDecay = parsed.GetValue(layerDecay),
                DropPath = parsed.GetValue(dropPath), LabelSmoothing = parsed.GetValue(smoothing), EvalEvery = parsed.GetValue(evalEvery),
                EvalBatchSize = parsed.GetValue(evalBatch), Workers = parsed.GetValue(trainer.Workers), Labels = eval.Labels(parsed), PosEmbedResample = eval.Resampling(parsed),
                Resume = parsed.GetValue(trainer.Resume),
                Mixup = MixupFrom(parsed.GetValue(mixup), parsed.GetValue(cutmix), cutmixMinMax.Read(parsed), parsed.GetValue(mixupProb), parsed.GetValue(mixupSwitch), parsed.GetValue(mixupMode)!),
                EraseProbability = parsed.GetValue(reprob), EraseCount = parsed.GetValue(recount),
                EraseMode = Enum.Parse<AttnDistill.Data.Mixing.ErasingMode>(parsed.GetValue(remode)!, ignoreCase: true),
                GlobalPool = parsed.GetValue(globalPool) && !parsed.GetValue(clsToken),
                ModelEma = parsed.GetValue(modelEma), ModelEmaDecay = parsed.GetValue(modelEmaDecay),
            };
            var blrs = trainer.BaseLrs(parsed);
            if (blrs.Count > 1) return Sweep(parsed, job, blrs, output, trainer, stop);
            var context = Run.Context(parsed, output, parsed.GetValue(trainer.Device)!, parsed.GetValue(trainer.Threads), stop);
            var result = ConsoleReporting.WithProgress("finetune", context, c => FinetuneJob.Run(job, c));
            ConsoleReporting.Summary($"fine-tuning ({job.Labels.Describe()} labels)", new[]
            {
                ("val top-1 (last epoch)", $"{result.Final.Top1:F2} %"),
                ("val top-5 (last epoch)", $"{result.Final.Top5:F2} %"),
                ("best val top-1", $"{result.Best.Top1:F2} % (epoch {result.BestEpoch})"),
                ("epochs done", result.Train.EpochsDone.ToString()),
                ("images/s", result.Train.ImagesPerSecond.ToString("F1")),
                ("device", context.DeviceName),
                ("model", result.ModelPath),
            });
            return result.Train.Interrupted ? Run.InterruptedExitCode : 0;
        }));
        return cmd;
    }

    /// <summary>--blr a,b,c: one fine-tuning per base lr in OUT/blr-VALUE, then one table over them.</summary>
    static int Sweep(System.CommandLine.ParseResult parsed, FinetuneJobConfig job, IReadOnlyList<double> blrs, string output, TrainerOptionSet trainer, CancellationToken stop)
    {
        if (job.Trainer.Lr is not null) throw new ArgumentException("--lr sets one absolute lr; a --blr sweep scales each base lr by the batch: leave --lr out, or pass one --blr.");
        if (blrs.Distinct().Count() != blrs.Count) throw new ArgumentException($"--blr lists a value twice ({string.Join(", ", blrs)}): each gets a run folder of its own.");
        var rows = new List<FinetuneSweepRow>();
        foreach (double blr in blrs)
        {
            string dir = FinetuneSweep.RunDir(output, blr);
            var one = job with { Trainer = job.Trainer with { BaseLr = blr } };
            var context = Run.Context(parsed, dir, parsed.GetValue(trainer.Device)!, parsed.GetValue(trainer.Threads), stop,
                settings: new Dictionary<string, string> { ["blr"] = blr.ToString("R", System.Globalization.CultureInfo.InvariantCulture) });
            ConsoleReporting.Info($"blr {blr:G3} ({rows.Count + 1} of {blrs.Count}): {dir}");
            var result = ConsoleReporting.WithProgress($"finetune blr {blr:G3}", context, c => FinetuneJob.Run(one, c));
            rows.Add(new FinetuneSweepRow(blr, one.Trainer.PeakLr(context.Distributed.WorldSize), result, dir));
        }
        string table = FinetuneSweep.WriteTable(output, rows);
        var best = rows.MaxBy(r => r.Result.Best.Top1)!;
        ConsoleReporting.Summary($"fine-tuning lr sweep ({job.Labels.Describe()} labels)", rows.Select(r =>
            ($"blr {r.BaseLr:G3} (lr {r.PeakLr:G3})", $"best top-1 {r.Result.Best.Top1:F2} % (epoch {r.Result.BestEpoch}), last {r.Result.Final.Top1:F2} % / top-5 {r.Result.Final.Top5:F2} %{(r == best ? "  <- best" : "")}"))
            .Append(("table", table)).ToArray());
        return 0;
    }

    static AttnDistill.Data.Mixing.MixupOptions? MixupFrom(double mixup, double cutmix, double[]? minMax, double prob, double switchProb, string mode)
    {
        if (minMax is { Length: > 0 } && minMax.Length != 2) throw new ArgumentException($"--cutmix-minmax takes two numbers (min max), got {minMax.Length}.");
        var options = new AttnDistill.Data.Mixing.MixupOptions
        {
            MixupAlpha = mixup, CutmixAlpha = cutmix, CutmixMinMax = minMax is { Length: 2 } ? (minMax[0], minMax[1]) : null,
            Prob = prob, SwitchProb = switchProb, Mode = Enum.Parse<AttnDistill.Data.Mixing.MixupMode>(mode, ignoreCase: true),
        }.Validate();
        return options.Active ? options : null;
    }
}
