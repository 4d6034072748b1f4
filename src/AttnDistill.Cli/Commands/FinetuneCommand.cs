using System.CommandLine;
using AttnDistill.Evaluation;
using AttnDistill.Training;

namespace AttnDistill.Cli.Commands;

/// <summary>`attndistill finetune`: full fine-tuning of a backbone checkpoint with a linear head.</summary>
public static class FinetuneCommand
{
    public static Command Create()
    {
        var cmd = new Command("finetune", "Fine-tune a backbone end to end with a linear head (AdamW, layer-wise lr decay, drop path, label smoothing); top-1/top-5 on the val split; writes metrics.json and finetuned.pth.");
        var eval = new EvaluationOptionSet(evalLayer: false);
        eval.AddTo(cmd);
        var layerDecay = new Option<double>("--layer-decay") { Description = "Layer-wise lr decay (1 = off; MAE: 0.75 ViT-B, 0.65 ViT-L).", DefaultValueFactory = _ => 0.75 };
        var dropPath = new Option<double>("--drop-path") { Description = "Stochastic depth rate (MAE: 0.1).", DefaultValueFactory = _ => 0.1 };
        var smoothing = new Option<double>("--smoothing") { Description = "Label smoothing (MAE: 0.1).", DefaultValueFactory = _ => 0.1 };
        var evalEvery = TrainerOptionSet.Positive("--eval-every", "Validate every N epochs (and after the last).", 1);
        var evalBatch = TrainerOptionSet.Positive("--eval-batch-size", "Images per forward pass when validating.", 256);
        foreach (var o in new Option[] { layerDecay, dropPath, smoothing, evalEvery, evalBatch }) cmd.Options.Add(o);
        // MAE's fine-tuning recipe: blr 1e-3 (ViT-S/B scale), 5 warm-up epochs, AdamW betas (0.9, 0.999), wd 0.05.
        var trainer = new TrainerOptionSet(new TrainerOptions { Epochs = 100, WarmupEpochs = 5, BatchSize = 64, BaseLr = 1e-3, WeightDecay = 0.05, Beta2 = 0.999 });
        trainer.AddTo(cmd);
        cmd.SetAction((parsed, ct) => Run.Guarded(parsed, ct, stop =>
        {
            string output = parsed.GetValue(trainer.Out)!;
            var job = new FinetuneJobConfig
            {
                Checkpoint = ZooDownloads.Resolve(parsed.GetValue(eval.Checkpoint)!, "--checkpoint", stop), DataRoot = parsed.GetValue(eval.Data)!,
                ImageSize = parsed.GetValue(eval.ImageSize), Trainer = trainer.Read(parsed), LayerDecay = parsed.GetValue(layerDecay),
                DropPath = parsed.GetValue(dropPath), LabelSmoothing = parsed.GetValue(smoothing), EvalEvery = parsed.GetValue(evalEvery),
                EvalBatchSize = parsed.GetValue(evalBatch), Workers = parsed.GetValue(trainer.Workers), Labels = eval.Labels(parsed),
                Resume = parsed.GetValue(trainer.Resume),
            };
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
}
