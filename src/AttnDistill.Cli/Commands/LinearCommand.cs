using System.CommandLine;
using AttnDistill.Evaluation;
using AttnDistill.Training;

namespace AttnDistill.Cli.Commands;

/// <summary>`attndistill linear`: MAE's linear probing with an lr sweep, on any backbone checkpoint.</summary>
public static class LinearCommand
{
    public static Command Create()
    {
        var cmd = new Command("linear", "Linear probing (MAE protocol: BatchNorm w/o affine + Linear, LARS, warm-up + cosine) with an lr sweep trained in one pass; writes metrics.json and linear_head.safetensors.");
        var eval = new EvaluationOptionSet(evalLayer: true);
        eval.AddTo(cmd);
        var sweep = new NumberListOption<double>("--sweep", "Base lrs of the sweep (peak lr = base lr x batch / 256; MAE: 0.1):", new LinearProbeOptions().BaseLrs.ToArray());
        var cached = new Option<bool>("--cached-features") { Description = "Train on cached center-crop features (fast; no augmentation) instead of MAE's RandomResizedCrop + flip recomputed every batch." };
        var evalBatch = TrainerOptionSet.Positive("--eval-batch-size", "Images per forward pass when extracting features.", 256);
        var cache = EvaluationOptionSet.FeatureCacheOption();
        foreach (var o in new Option[] { sweep, cached, evalBatch, cache }) cmd.Options.Add(o);
        var trainer = new TrainerOptionSet(new TrainerOptions { Epochs = 90, WarmupEpochs = 10, BatchSize = 256, BaseLr = 0.1, WeightDecay = 0 }, lrOptions: false);
        trainer.AddTo(cmd);
        cmd.SetAction((parsed, ct) => Run.Guarded(parsed, ct, stop =>
        {
            string output = parsed.GetValue(trainer.Out)!;
            var job = new LinearJobConfig
            {
                Checkpoint = ZooDownloads.Resolve(parsed.GetValue(eval.Checkpoint)!, "--checkpoint", stop), DataRoot = parsed.GetValue(eval.Data)!,
                ImageSize = parsed.GetValue(eval.ImageSize), Trainer = trainer.Read(parsed), BaseLrs = sweep.Read(parsed),
                Augment = !parsed.GetValue(cached), Workers = parsed.GetValue(trainer.Workers), EvalBatchSize = parsed.GetValue(evalBatch),
                Labels = eval.Labels(parsed), EvalLayer = eval.EvalLayer(parsed), PosEmbedResample = eval.Resampling(parsed), FeatureCacheDir = EvaluationOptionSet.FeatureCacheDir(parsed, cache, output),
                Resume = parsed.GetValue(trainer.Resume),
            };
            if (job.BaseLrs.Count == 0 || job.BaseLrs.Any(b => !(b > 0))) throw new ArgumentException($"--sweep needs positive base lrs, got [{string.Join(", ", job.BaseLrs)}].");
            var context = Run.Context(parsed, output, parsed.GetValue(trainer.Device)!, parsed.GetValue(trainer.Threads), stop);
            var result = ConsoleReporting.WithProgress("linear probe", context, c => LinearJob.Run(job, c));
            ConsoleReporting.Summary($"linear probe ({job.Labels.Describe()} labels)", result.Sweep
                .Select(h => ($"base lr {h.BaseLr:G3} (lr {h.Lr:G3}){(h == result.Best ? "  <- best" : "")}", $"top-1 {h.Top1:F2} %, top-5 {h.Top5:F2} %")));
            return 0;
        }));
        return cmd;
    }
}
