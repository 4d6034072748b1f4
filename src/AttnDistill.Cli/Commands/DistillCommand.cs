using System.CommandLine;
using AttnDistill.Distillation;
using AttnDistill.Models;

namespace AttnDistill.Cli.Commands;

/// <summary>
/// `attndistill distill`: train a small ViT from a frozen teacher's features and attention; and
/// `attndistill teacher-cache`, the same options, which only fills --teacher-cache ahead of the runs.
/// </summary>
public static class DistillCommand
{
    public static Command Create() => Create(fillCacheOnly: false);

    /// <summary>`attndistill teacher-cache`: distill's options; runs the teacher over every epoch of the stream into --teacher-cache, trains nothing.</summary>
    public static Command CreateTeacherCache() => Create(fillCacheOnly: true);

    static Command Create(bool fillCacheOnly)
    {
        var cmd = fillCacheOnly
            ? new Command("teacher-cache", "Fill a teacher-target cache ahead of distill runs: the options of distill (the same teacher, data, image size, crop, seed, batch size and --epochs), the teacher run over every epoch of the seeded stream into --teacher-cache, no student trained.")
            : new Command("distill", "Distill a student ViT from a frozen self-supervised teacher (features + attention maps, AttnDistill BMVC 2022).");
        var data = new Option<string>("--data") { Description = "Training images: an ImageFolder root (train/<class>/*.jpg), IDX (Fashion-MNIST) or CIFAR binary folder.", Required = true };
        var teacher = new Option<string>("--teacher") { Description = "Teacher: a zoo name (dino_vits16, dino_vits8, dino_vitb16, mae_vitb16, ibot_vits16, mugs_vits16, ...: downloaded once into the torch.hub cache, see attndistill models) or a checkpoint file: DINO/MAE/Mugs/iBOT/timm .pth or .safetensors, or ours (pretrain-mae's teacher.safetensors).", Required = true };
        var teacherHeads = new Option<int?>("--teacher-heads") { Description = "Teacher heads when its width is not 192/384/768/1024." };
        var teacherResample = PosEmbedResampleOption.Create("the teacher's", "--teacher-pos-embed-resample");
        var teacherCache = new Option<string?>("--teacher-cache") { Description = "Folder of a teacher-target cache: the first run fills it (per epoch and image of the seeded augmentation stream: the teacher's CLS feature and attention rows, memory-mapped, one file per epoch), later runs with the same teacher, data, image size, crop, seed and batch size read it and skip the teacher's forward; the loss options (lambda, T, aggregation, interpolation, KL/MSE) stay free. One process only." };
        var teacherCacheDtype = new Option<string>("--teacher-cache-dtype") { Description = "float32 (a cached run computes exactly what an online run does) or float16 (half the size).", DefaultValueFactory = _ => "float32" };
        teacherCacheDtype.AcceptOnlyFromAmong("float32", "float16");
        var student = new Option<string>("--student") { Description = "Student architecture: this project's names (vit_tiny_patch16, vit_tiny_d8_patch32, mae_* for sin-cos PE), timm's (vit_tiny_patch16_224), DeiT's (deit_tiny_patch16_224) or a size (vit_tiny, vit_small: patch from --student-patch, else 16); attndistill models lists them.", DefaultValueFactory = _ => "vit_tiny_patch16" };
        var patch = new Option<int?>("--student-patch") { Description = "Student patch size (Table 10 'patch size')." };
        var depth = new Option<int?>("--student-depth") { Description = "Student blocks (Table 10 'layers')." };
        var heads = new Option<int?>("--student-heads") { Description = "Student heads (Table 10 'heads')." };
        var dim = new Option<int?>("--student-dim") { Description = "Student width." };
        var pos = new Option<PosEmbedKind?>("--student-pos-embed") { Description = "learnable or sincos; default: the preset's." };
        var imageSize = TrainerOptionSet.Positive("--image-size", "Crop size of RandomResizedCrop (224 in the paper; 32 or 28 on a CPU).", 224);
        var proj = new Option<int>("--proj-layers") { Description = "Projector P layers (Table 10(d): 0/1/2/4/8; paper default 4).", DefaultValueFactory = _ => 4 };
        var wCls = new Option<double>("--weight-cls") { Description = "w_cls: weight of the CLS feature MSE.", DefaultValueFactory = _ => 1.0 };
        var wAttn = new Option<double>("--weight-attn") { Description = "lambda (the paper's w_attn) of the attention KL; 0 = feature-only baseline (paper best 0.1).", DefaultValueFactory = _ => 0.1 };
        var temp = new Option<double>("--attn-T") { Description = "T, the head-aggregation temperature (paper best 10; 5 and 20 worse).", DefaultValueFactory = _ => 10 };
        var agg = new Option<AttentionAggregation>("--aggregation") { Description = "Head aggregation (Table 10 'aggregation'): product (the method's log-sum), max, mean, min, none (per head; head counts must match).", DefaultValueFactory = _ => AttentionAggregation.Product };
        var interp = new Option<bool>("--interpolate") { Description = "Bicubic-resize the teacher's patch attention to the student's grid when patch sizes differ.", DefaultValueFactory = _ => true };
        var clampInterp = new Option<bool>("--clamp-interpolation") { Description = "Cut the resized attention at 0 before its CLS-mass rescaling (true, this project's default). false: the authors' interpolation exactly, whose negative bicubic overshoot meets log() in product aggregation and turns that batch's loss NaN (the batch is then skipped).", DefaultValueFactory = _ => true };
        var allBlocks = new Option<bool>("--attn-all-blocks") { Description = "Attention loss on every block (Table 10 'attention layer: all') instead of the last." };
        var byValue = new Option<bool>("--weight-by-value") { Description = "Weight attention by value-vector norms before the loss (Table 10 'weight by VALUE', after ATS)." };
        var attnLoss = new Option<AttentionLossKind>("--attn-loss") { Description = "KL (the method) or MSE (Table 10 'MSE').", DefaultValueFactory = _ => AttentionLossKind.KL };
        var patchAlign = new Option<bool>("--patch-token-align") { Description = "Feature loss over all tokens, not only CLS (Table 10 'patch token align')." };
        var method = new Option<DistillationMethod>("--method") { Description = "attndistill, or compress for the CompRess 1q baseline (Table 10 'CompRes KD').", DefaultValueFactory = _ => DistillationMethod.AttnDistill };
        var queue = new Option<int>("--compress-queue") { Description = "CompRess memory bank size.", DefaultValueFactory = _ => CompressLoss.DefaultQueueSize };
        var tau = new Option<double>("--compress-tau") { Description = "CompRess temperature.", DefaultValueFactory = _ => CompressLoss.DefaultTau };
        var precision = TrainerOptionSet.PrecisionOption();
        var config = new Option<string>(RecipeArguments.ConfigOption) { Description = "YAML recipe (keys = these option names); flags given here override it." };
        foreach (var o in new Option[] { config, data, teacher, teacherHeads, teacherResample, teacherCache, teacherCacheDtype, student, patch, depth, heads, dim, pos, imageSize, proj, wCls, wAttn, temp, agg, interp, clampInterp, allBlocks, byValue, attnLoss, patchAlign, method, queue, tau, precision })
            cmd.Options.Add(o);
        var trainer = new TrainerOptionSet();
        trainer.AddTo(cmd);

        cmd.SetAction((parsed, ct) => Run.Guarded(parsed, ct, stop =>
        {
            var preset = VitPresets.Get(parsed.GetValue(student)!);
            var studentCfg = preset with
            {
                ImageSize = parsed.GetValue(imageSize),
                PatchSize = parsed.GetValue(patch) ?? preset.PatchSize,
                Depth = parsed.GetValue(depth) ?? preset.Depth,
                NumHeads = parsed.GetValue(heads) ?? preset.NumHeads,
                EmbedDim = parsed.GetValue(dim) ?? preset.EmbedDim,
                PosEmbed = parsed.GetValue(pos) ?? preset.PosEmbed,
            };
            var job = new DistillJobConfig
            {
                DataRoot = parsed.GetValue(data)!, TeacherPath = ZooDownloads.Resolve(parsed.GetValue(teacher)!, "--teacher", stop), TeacherHeads = parsed.GetValue(teacherHeads), TeacherPosEmbedResample = PosEmbedResampleOption.Read(parsed, teacherResample),
                TeacherCacheDir = parsed.GetValue(teacherCache), TeacherCacheDtype = parsed.GetValue(teacherCacheDtype)!,
                Student = studentCfg, ProjectorLayers = parsed.GetValue(proj),
                Loss = new DistillLossOptions
                {
                    WeightCls = parsed.GetValue(wCls), WeightAttn = parsed.GetValue(wAttn), AttnTemperature = parsed.GetValue(temp),
                    Aggregation = parsed.GetValue(agg), Interpolate = parsed.GetValue(interp), ClampInterpolation = parsed.GetValue(clampInterp), AllBlocks = parsed.GetValue(allBlocks),
                    WeightByValue = parsed.GetValue(byValue), AttnLoss = parsed.GetValue(attnLoss), PatchTokenAlign = parsed.GetValue(patchAlign),
                },
                Method = parsed.GetValue(method), CompressQueue = parsed.GetValue(queue), CompressTau = parsed.GetValue(tau),
                Trainer = trainer.Read(parsed), Workers = parsed.GetValue(trainer.Workers),
                Resume = parsed.GetValue(trainer.Resume), Precision = TrainerOptionSet.ReadPrecision(parsed, precision),
            };
            var context = Run.Context(parsed, parsed.GetValue(trainer.Out)!, parsed.GetValue(trainer.Device)!, parsed.GetValue(trainer.Threads), stop);
            if (fillCacheOnly)
            {
                var filled = ConsoleReporting.WithProgress("teacher-cache", context, c => DistillJob.FillTeacherCache(job, c));
                ConsoleReporting.Summary("teacher cache", new[]
                {
                    ("folder", Path.GetFullPath(job.TeacherCacheDir ?? "")),
                    ("epochs filled now", filled.Filled.Count == 0 ? "none (all were there)" : string.Join(", ", filled.Filled.Select(e => e + 1))),
                    ("epochs in the cache", string.Join(", ", filled.InCache.Select(e => e + 1))),
                    ("size per epoch", $"{filled.BytesPerEpoch / 1e6:F1} MB ({job.TeacherCacheDtype})"),
                    ("images/s", filled.ImagesPerSecond.ToString("F1")),
                });
                return 0;
            }
            var result = ConsoleReporting.WithProgress("distill", context, c => DistillJob.Run(job, c));
            ConsoleReporting.Summary("distillation", new[]
            {
                ("student", DistillJob.Describe(result.StudentConfig)),
                ("epochs done", result.Train.EpochsDone.ToString()),
                ("optimizer steps", result.Train.OptimizerSteps.ToString()),
                ("skipped batches", result.Train.SkippedBatches.ToString()),
                ("final loss", string.Join(", ", result.Train.LastEpochLoss.Select(kv => $"{kv.Key} {kv.Value:G4}"))),
                ("images/s", result.Train.ImagesPerSecond.ToString("F1")),
                ("device", context.DeviceName),
                ("backbone", result.BackbonePth),
                ("last checkpoint", result.Train.LastCheckpoint ?? "-"),
            });
            return result.Train.Interrupted ? Run.InterruptedExitCode : 0;
        }));
        return cmd;
    }
}
