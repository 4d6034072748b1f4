using System.CommandLine;
using AttnDistill.Models;
using AttnDistill.Pretraining.Dino;
using AttnDistill.Training;

namespace AttnDistill.Cli.Commands;

/// <summary>`attndistill pretrain-dino`: make a teacher with DINO self-distillation; switches carry main_dino's argument names in kebab-case.</summary>
public static class PretrainDinoCommand
{
    public static Command Create()
    {
        var d = new DinoOptions();
        var cmd = new Command("pretrain-dino", "Pre-train a ViT with DINO self-distillation (multi-crop, momentum teacher, centring) and save the teacher backbone "
            + "(teacher.safetensors / teacher.pth, what `distill --teacher`, `knn` and `visualize` take) and DINO's own checkpoint.pth.");
        var config = new Option<string>(RecipeArguments.ConfigOption) { Description = "YAML recipe (keys = these option names); flags given here override it." };
        var data = new Option<string>("--data") { Description = "Training images (main_dino's --data_path): an ImageFolder root (train/<class>/*.jpg), IDX (Fashion-MNIST) or CIFAR binary folder.", Required = true };
        var arch = new Option<string>("--arch") { Description = "Backbone (main_dino's --arch): vit_tiny, vit_small, vit_base or any project model name (vit_small_patch16, timm's vit_small_patch16_224 ...).", DefaultValueFactory = _ => "vit_small" };
        arch.Aliases.Add("--model");
        var patch = new Option<int?>("--patch-size") { Description = "Patch size (DINO default 16; overrides the preset)." };
        var depth = new Option<int?>("--depth") { Description = "Backbone blocks (overrides the preset)." };
        var heads = new Option<int?>("--heads") { Description = "Backbone heads (overrides the preset)." };
        var dim = new Option<int?>("--dim") { Description = "Backbone width (overrides the preset)." };
        var imageSize = TrainerOptionSet.Positive("--image-size", "Side of the two global crops and of the model (DINO: 224; 28 for Fashion-MNIST, 32 for CIFAR-10).", 224);
        var outDim = TrainerOptionSet.Positive("--out-dim", "Dimensionality of the DINO head output (DINO: 65536).", 65536);
        var hiddenDim = TrainerOptionSet.Positive("--head-hidden-dim", "Hidden width of the head's MLP (DINOHead's hidden_dim, 2048).", 2048);
        var bottleneckDim = TrainerOptionSet.Positive("--head-bottleneck-dim", "Bottleneck width before the weight-normalised last layer (DINOHead's bottleneck_dim, 256).", 256);
        var normLastLayer = new Option<bool>("--norm-last-layer") { Description = "Freeze the norm (weight_g = 1) of the head's last layer: more stable; false gives better ViT-S results with care.", DefaultValueFactory = _ => true };
        var useBn = new Option<bool>("--use-bn-in-head") { Description = "Batch norm in the head's MLP (single-process runs only: no synchronized BN here).", DefaultValueFactory = _ => false };
        var momentum = new Option<double>("--momentum-teacher") { Description = "Base EMA momentum of the teacher, raised to 1 by a cosine over training (0.996; 0.9995 for small batches).", DefaultValueFactory = _ => d.MomentumTeacher };
        var warmupTT = new Option<double>("--warmup-teacher-temp") { Description = "Initial teacher temperature (0.04).", DefaultValueFactory = _ => d.WarmupTeacherTemp };
        var teacherTemp = new Option<double>("--teacher-temp") { Description = "Teacher temperature after the warm-up (0.04; 0.07 recommended with a 30-epoch warm-up).", DefaultValueFactory = _ => d.TeacherTemp };
        var warmupTTEpochs = new Option<int>("--warmup-teacher-temp-epochs") { Description = "Epochs of the linear teacher-temperature warm-up (0).", DefaultValueFactory = _ => d.WarmupTeacherTempEpochs };
        var weightDecay = new Option<double>("--weight-decay") { Description = "Initial AdamW weight decay of the weights (not biases/norms) (0.04).", DefaultValueFactory = _ => d.WeightDecay };
        var weightDecayEnd = new Option<double>("--weight-decay-end") { Description = "Final weight decay; a per-iteration cosine goes from --weight-decay to it (0.4).", DefaultValueFactory = _ => d.WeightDecayEnd };
        var clipGrad = new Option<double>("--clip-grad") { Description = "Max gradient norm of each parameter (per tensor, not global) (3.0); 0 = off.", DefaultValueFactory = _ => d.ClipGrad };
        var freeze = new Option<int>("--freeze-last-layer") { Description = "Epochs during which the head's last layer is kept fixed (its gradients dropped) (1).", DefaultValueFactory = _ => d.FreezeLastLayer };
        var lr = new Option<double>("--lr") { Description = "Learning rate at batch 256, after the warm-up: the peak is lr x batch x processes / 256 (0.0005).", DefaultValueFactory = _ => d.Lr };
        var minLr = new Option<double>("--min-lr") { Description = "Learning rate at the end of the cosine (1e-6).", DefaultValueFactory = _ => d.MinLr };
        var warmup = new Option<int>("--warmup-epochs") { Description = "Epochs of the linear lr warm-up (10).", DefaultValueFactory = _ => d.WarmupEpochs };
        var globalScale = Pair("--global-crops-scale", "Area range of the two global crops:", 0.4, 1.0);
        var localNumber = new Option<int>("--local-crops-number") { Description = "Number of small local crops; 0 = two global crops only (8).", DefaultValueFactory = _ => 8 };
        var localScale = Pair("--local-crops-scale", "Area range of the local crops:", 0.05, 0.4);
        var localSize = new Option<int?>("--local-crops-size") { Description = "Side of the local crops (DINO: 96 at 224); default image size x 96 / 224 rounded to a multiple of the patch size (12 for 28 or 32 with patch 4)." };
        var dropPath = new Option<double>("--drop-path-rate") { Description = "Stochastic depth of the student (0.1); the teacher has none.", DefaultValueFactory = _ => 0.1 };
        var saveckp = new Option<int>("--saveckp-freq") { Description = "Write teacher-EEEE.safetensors (the teacher backbone, for k-NN curves) every N epochs; 0 = never (main_dino saves its whole checkpoint every 20).", DefaultValueFactory = _ => 0 };
        foreach (var o in new Option[] { config, data, arch, patch, depth, heads, dim, imageSize, outDim, hiddenDim, bottleneckDim, normLastLayer, useBn, momentum, warmupTT, teacherTemp,
                     warmupTTEpochs, weightDecay, weightDecayEnd, clipGrad, freeze, lr, minLr, warmup, globalScale, localNumber, localScale, localSize, dropPath, saveckp })
            cmd.Options.Add(o);
        var trainer = new TrainerOptionSet(new TrainerOptions { Epochs = 100, BatchSize = 64 });
        trainer.BatchSize.Aliases.Add("--batch-size-per-gpu");
        trainer.Out.Aliases.Add("--output-dir");
        trainer.Workers.Aliases.Add("--num-workers");
        foreach (var o in new Option[] { trainer.Epochs, trainer.BatchSize, trainer.CheckpointEvery, trainer.LogEvery, trainer.Seed, trainer.Workers, trainer.Threads, trainer.Out, trainer.Resume, trainer.Device })
            cmd.Options.Add(o);

        cmd.SetAction((parsed, ct) => Run.Guarded(parsed, ct, stop =>
        {
            var preset = VitPresets.Get(parsed.GetValue(arch)!);
            var backbone = (preset with
            {
                ImageSize = parsed.GetValue(imageSize),
                PatchSize = parsed.GetValue(patch) ?? preset.PatchSize,
                Depth = parsed.GetValue(depth) ?? preset.Depth,
                NumHeads = parsed.GetValue(heads) ?? preset.NumHeads,
                EmbedDim = parsed.GetValue(dim) ?? preset.EmbedDim,
                PosEmbed = PosEmbedKind.Learnable,
                DropPathRate = parsed.GetValue(dropPath),
            }).Validate();
            var gs = globalScale.Read(parsed);
            var ls = localScale.Read(parsed);
            var job = new DinoPretrainJobConfig
            {
                DataRoot = parsed.GetValue(data)!,
                Backbone = backbone,
                Head = new DinoHeadConfig
                {
                    OutDim = parsed.GetValue(outDim), UseBn = parsed.GetValue(useBn), NormLastLayer = parsed.GetValue(normLastLayer),
                    HiddenDim = parsed.GetValue(hiddenDim), BottleneckDim = parsed.GetValue(bottleneckDim),
                },
                Crops = new DinoCropConfig
                {
                    GlobalSize = backbone.ImageSize, LocalSize = parsed.GetValue(localSize) ?? DinoCropConfig.DefaultLocalSize(backbone.ImageSize, backbone.PatchSize),
                    GlobalScaleMin = gs[0], GlobalScaleMax = gs[1], LocalCropsNumber = parsed.GetValue(localNumber), LocalScaleMin = ls[0], LocalScaleMax = ls[1],
                },
                Dino = new DinoOptions
                {
                    Lr = parsed.GetValue(lr), MinLr = parsed.GetValue(minLr), WarmupEpochs = parsed.GetValue(warmup), WeightDecay = parsed.GetValue(weightDecay),
                    WeightDecayEnd = parsed.GetValue(weightDecayEnd), MomentumTeacher = parsed.GetValue(momentum), ClipGrad = parsed.GetValue(clipGrad),
                    FreezeLastLayer = parsed.GetValue(freeze), WarmupTeacherTemp = parsed.GetValue(warmupTT), TeacherTemp = parsed.GetValue(teacherTemp),
                    WarmupTeacherTempEpochs = parsed.GetValue(warmupTTEpochs),
                },
                Trainer = new TrainerOptions
                {
                    Epochs = parsed.GetValue(trainer.Epochs), BatchSize = parsed.GetValue(trainer.BatchSize), Seed = parsed.GetValue(trainer.Seed),
                    CheckpointEveryEpochs = parsed.GetValue(trainer.CheckpointEvery), LogEverySteps = parsed.GetValue(trainer.LogEvery),
                },
                Workers = parsed.GetValue(trainer.Workers),
                Resume = parsed.GetValue(trainer.Resume),
                SaveckpFreq = parsed.GetValue(saveckp),
            };
            job = job with { Args = DinoPretrainJob.ArgsOf(job, parsed.GetValue(arch)!, parsed.GetValue(trainer.Out)!) };
            job.Crops.Validate(backbone.PatchSize);
            job.Dino.Validate(job.Trainer.Epochs);
            var context = Run.Context(parsed, parsed.GetValue(trainer.Out)!, parsed.GetValue(trainer.Device)!, parsed.GetValue(trainer.Threads), stop);
            var result = ConsoleReporting.WithProgress("pretrain-dino", context, c => DinoPretrainJob.Run(job, c));
            ConsoleReporting.Summary("DINO pre-training", new[]
            {
                ("backbone", Distillation.DistillJob.Describe(backbone)),
                ("head", $"out {job.Head.OutDim}, hidden {job.Head.HiddenDim}, bottleneck {job.Head.BottleneckDim}, norm last layer {job.Head.NormLastLayer}"),
                ("crops", $"2 x {job.Crops.GlobalSize} + {job.Crops.LocalCropsNumber} x {job.Crops.LocalSize}"),
                ("epochs done", result.Train.EpochsDone.ToString()),
                ("optimizer steps", result.Train.OptimizerSteps.ToString()),
                ("final loss", string.Join(", ", result.Train.LastEpochLoss.Select(kv => $"{kv.Key} {kv.Value:G4}"))),
                ("images/s", result.Train.ImagesPerSecond.ToString("F1")),
                ("teacher", result.TeacherPath),
                ("DINO checkpoint", result.DinoCheckpointPath),
                ("last checkpoint", result.Train.LastCheckpoint ?? "-"),
            });
            return result.Train.Interrupted ? Run.InterruptedExitCode : 0;
        }));
        return cmd;
    }

    /// <summary>A two-number option (main_dino's nargs='+' scale pairs).</summary>
    static NumberListOption<double> Pair(string name, string description, double lo, double hi) => new(name, description, new[] { lo, hi }, count: 2);
}
