using System.CommandLine;
using AttnDistill.Models;
using AttnDistill.Pretraining;

namespace AttnDistill.Cli.Commands;

/// <summary>`attndistill pretrain-mae`: make a teacher with MAE pre-training (docs/METHOD.md, section 4.1).</summary>
public static class PretrainMaeCommand
{
    public static Command Create()
    {
        var cmd = new Command("pretrain-mae", "Pre-train a masked autoencoder and save its encoder as a teacher (teacher.safetensors, sin-cos PE) that `distill --teacher` loads.");
        var precision = TrainerOptionSet.PrecisionOption();
        var config = new Option<string>(RecipeArguments.ConfigOption) { Description = "YAML recipe (keys = these option names); flags given here override it." };
        var data = new Option<string>("--data") { Description = "Training images: an ImageFolder root (train/<class>/*.jpg), IDX (Fashion-MNIST) or CIFAR binary folder.", Required = true };
        var model = new Option<string>("--model") { Description = "Encoder architecture (vit_tiny_patch16, vit_small_patch16, timm's vit_small_patch16_224, or a size such as vit_small with --patch-size; the encoder always uses sin-cos PE).", DefaultValueFactory = _ => "vit_small_patch16" };
        var patch = new Option<int?>("--patch-size") { Description = "Encoder patch size (overrides the preset)." };
        var depth = new Option<int?>("--depth") { Description = "Encoder blocks (overrides the preset)." };
        var heads = new Option<int?>("--heads") { Description = "Encoder heads (overrides the preset)." };
        var dim = new Option<int?>("--dim") { Description = "Encoder width (overrides the preset)." };
        var imageSize = TrainerOptionSet.Positive("--image-size", "Crop size of RandomResizedCrop (224 in MAE; 32 for CIFAR-10 on a CPU).", 224);
        var maskRatio = new Option<double>("--mask-ratio") { Description = "Fraction of patches removed per image (MAE: 0.75).", DefaultValueFactory = _ => 0.75 };
        var decDim = new Option<int?>("--decoder-dim") { Description = "Decoder width (default by encoder width: 512 for base+, 256 for small, 128 below)." };
        var decDepth = new Option<int?>("--decoder-depth") { Description = "Decoder blocks (default 8 / 4 / 2 as above)." };
        var decHeads = new Option<int?>("--decoder-heads") { Description = "Decoder heads (default 16 / 8 / 4 as above)." };
        var normPix = new Option<bool>("--norm-pix-loss") { Description = "Per-patch normalized pixel targets (MAE's recommended setting).", DefaultValueFactory = _ => true };
        var pictureEvery = new Option<int>("--picture-every") { Description = "Write reconstruction-EEEE.png (original | masked | reconstruction) every N epochs and at the end; 0 = never.", DefaultValueFactory = _ => 10 };
        foreach (var o in new Option[] { config, data, model, patch, depth, heads, dim, imageSize, maskRatio, decDim, decDepth, decHeads, normPix, pictureEvery, precision })
            cmd.Options.Add(o);
        var trainer = new TrainerOptionSet();
        trainer.AddTo(cmd);

        cmd.SetAction((parsed, ct) => Run.Guarded(parsed, ct, stop =>
        {
            var preset = VitPresets.Get(parsed.GetValue(model)!);
            var encoder = preset with
            {
                ImageSize = parsed.GetValue(imageSize),
                PatchSize = parsed.GetValue(patch) ?? preset.PatchSize,
                Depth = parsed.GetValue(depth) ?? preset.Depth,
                NumHeads = parsed.GetValue(heads) ?? preset.NumHeads,
                EmbedDim = parsed.GetValue(dim) ?? preset.EmbedDim,
            };
            var defaults = MaeConfig.For(encoder);
            var mae = (defaults with
            {
                MaskRatio = parsed.GetValue(maskRatio),
                DecoderEmbedDim = parsed.GetValue(decDim) ?? defaults.DecoderEmbedDim,
                DecoderDepth = parsed.GetValue(decDepth) ?? defaults.DecoderDepth,
                DecoderNumHeads = parsed.GetValue(decHeads) ?? defaults.DecoderNumHeads,
                NormPixLoss = parsed.GetValue(normPix),
            }).Validate();
            var job = new MaePretrainJobConfig
            {
                DataRoot = parsed.GetValue(data)!, Mae = mae, Trainer = trainer.Read(parsed), Workers = parsed.GetValue(trainer.Workers),
                Resume = parsed.GetValue(trainer.Resume), PictureEvery = parsed.GetValue(pictureEvery), Precision = TrainerOptionSet.ReadPrecision(parsed, precision),
            };
            if (job.PictureEvery < 0) throw new ArgumentException($"--picture-every must be >= 0 (0 = no pictures), got {job.PictureEvery}.");
            var context = Run.Context(parsed, parsed.GetValue(trainer.Out)!, parsed.GetValue(trainer.Device)!, parsed.GetValue(trainer.Threads), stop);
            var result = ConsoleReporting.WithProgress("pretrain-mae", context, c => MaePretrainJob.Run(job, c));
            ConsoleReporting.Summary("MAE pre-training", new[]
            {
                ("encoder", Distillation.DistillJob.Describe(mae.Encoder)),
                ("decoder", $"width {mae.DecoderEmbedDim} depth {mae.DecoderDepth} heads {mae.DecoderNumHeads}, mask ratio {mae.MaskRatio}"),
                ("epochs done", result.Train.EpochsDone.ToString()),
                ("optimizer steps", result.Train.OptimizerSteps.ToString()),
                ("final loss", string.Join(", ", result.Train.LastEpochLoss.Select(kv => $"{kv.Key} {kv.Value:G4}"))),
                ("images/s", result.Train.ImagesPerSecond.ToString("F1")),
                ("device", context.DeviceName),
                ("teacher", result.TeacherPath),
                ("last checkpoint", result.Train.LastCheckpoint ?? "-"),
            });
            return result.Train.Interrupted ? Run.InterruptedExitCode : 0;
        }));
        return cmd;
    }
}
