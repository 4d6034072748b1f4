using TorchSharp;
using AttnDistill.Checkpoints;
using AttnDistill.Data;
using AttnDistill.Distributed;
using AttnDistill.Models;
using AttnDistill.Runs;
using AttnDistill.Training;
using static TorchSharp.torch;

namespace AttnDistill.Pretraining.Dino;

/// <summary>DINO's own settings (main_dino's arguments), beside the shared trainer's.</summary>
public sealed record DinoOptions
{
    /// <summary>Base lr at batch 256: the peak is lr x batch x processes / 256 (main_dino's linear scaling rule).</summary>
    public double Lr { get; init; } = 0.0005;
    public double MinLr { get; init; } = 1e-6;
    public int WarmupEpochs { get; init; } = 10;
    public double WeightDecay { get; init; } = 0.04;
    public double WeightDecayEnd { get; init; } = 0.4;
    public double MomentumTeacher { get; init; } = 0.996;
    /// <summary>Per-parameter gradient norm limit; 0 disables it.</summary>
    public double ClipGrad { get; init; } = 3.0;
    public int FreezeLastLayer { get; init; } = 1;
    public double WarmupTeacherTemp { get; init; } = 0.04;
    public double TeacherTemp { get; init; } = 0.04;
    public int WarmupTeacherTempEpochs { get; init; }
    public double StudentTemp { get; init; } = 0.1;
    public double CenterMomentum { get; init; } = 0.9;

    public DinoOptions Validate(int epochs)
    {
        if (!(Lr > 0)) throw new ArgumentException($"--lr must be positive, got {Lr}.");
        if (!(MinLr >= 0)) throw new ArgumentException($"--min-lr must be >= 0, got {MinLr}.");
        if (WarmupEpochs < 0 || WarmupEpochs > epochs) throw new ArgumentException($"--warmup-epochs must be between 0 and --epochs {epochs}, got {WarmupEpochs}.");
        if (!(WeightDecay >= 0) || !(WeightDecayEnd >= 0)) throw new ArgumentException($"--weight-decay and --weight-decay-end must be >= 0, got {WeightDecay} and {WeightDecayEnd}.");
        if (!(MomentumTeacher is >= 0 and <= 1)) throw new ArgumentException($"--momentum-teacher must be in [0, 1], got {MomentumTeacher}: DINO uses 0.996 (0.9995 for small batches).");
        if (!(ClipGrad >= 0)) throw new ArgumentException($"--clip-grad must be >= 0 (0 disables it), got {ClipGrad}.");
        if (FreezeLastLayer < 0) throw new ArgumentException($"--freeze-last-layer must be >= 0, got {FreezeLastLayer}.");
        if (!(WarmupTeacherTemp > 0) || !(TeacherTemp > 0)) throw new ArgumentException($"teacher temperatures must be positive, got {WarmupTeacherTemp} and {TeacherTemp}.");
        if (WarmupTeacherTempEpochs < 0 || WarmupTeacherTempEpochs > epochs)
            throw new ArgumentException($"--warmup-teacher-temp-epochs must be between 0 and --epochs {epochs}, got {WarmupTeacherTempEpochs}.");
        return this;
    }
}

/// <summary>Settings of a DINO pre-training run.</summary>
public sealed record DinoPretrainJobConfig
{
    public required string DataRoot { get; init; }
    /// <summary>The student backbone (its DropPathRate is the student's; the teacher has none).</summary>
    public required VitConfig Backbone { get; init; }
    public required DinoHeadConfig Head { get; init; }
    public required DinoCropConfig Crops { get; init; }
    public required DinoOptions Dino { get; init; }
    /// <summary>Epochs, batch size, seed, logging; its lr, warm-up, weight decay and clipping are set from <see cref="Dino"/>.</summary>
    public required TrainerOptions Trainer { get; init; }
    public int Workers { get; init; } = 2;
    public bool Resume { get; init; }
    /// <summary>Write teacher-EEEE.safetensors (the teacher backbone) every this many epochs, for k-NN curves; 0: never.</summary>
    public int SaveckpFreq { get; init; }
    /// <summary>Stop after this many epochs of this invocation (tests simulate a kill with it); null: run to the end.</summary>
    public int? StopAfterEpochs { get; init; }
    /// <summary>The run's settings under main_dino's names, saved as checkpoint.pth's args.</summary>
    public IReadOnlyDictionary<string, object> Args { get; init; } = new Dictionary<string, object>();
}

/// <summary>What a DINO run reports; <see cref="TeacherPath"/> is what <c>distill --teacher</c> and <c>knn --checkpoint</c> take.</summary>
public sealed record DinoPretrainJobResult(TrainResult Train, string TeacherPath, string DinoCheckpointPath);

/// <summary>DINO pre-training with the shared trainer; writes DINO's checkpoint.pth and the teacher backbone.</summary>
public static class DinoPretrainJob
{
    public const string TeacherFile = "teacher.safetensors";
    public const string TeacherPthFile = "teacher.pth";
    public const string DinoCheckpoint = "checkpoint.pth";
    public const string InitialTeacherFile = "teacher-init.safetensors";

    /// <summary>The trainer's options for a DINO run: AdamW with PyTorch's betas, DINO's peak lr, no global clipping (DINO clips per parameter).</summary>
    public static TrainerOptions TrainerOptionsFor(DinoPretrainJobConfig cfg, int worldSize)
    {
        var t = cfg.Trainer;
        int batch = t.EffectiveBatch > 0 ? t.EffectiveBatch : t.BatchSize * worldSize;
        double peak = LrSchedule.ScaledLr(cfg.Dino.Lr, batch);
        return t with
        {
            Lr = peak, MinLr = Math.Min(cfg.Dino.MinLr, peak), WarmupEpochs = cfg.Dino.WarmupEpochs, WeightDecay = cfg.Dino.WeightDecay,
            ClipGrad = 0, Beta1 = 0.9, Beta2 = 0.999,
        };
    }

    /// <summary>Trains on <see cref="RunContext.Device"/>: student, momentum teacher, centre, crops, losses and optimizer state live there.</summary>
    public static DinoPretrainJobResult Run(DinoPretrainJobConfig cfg, RunContext ctx)
    {
        var dist = ctx.Distributed;
        var log = ctx.Log;
        string outDir = ctx.OutDir;
        var backbone = cfg.Backbone.Validate();
        if (backbone.PosEmbed != PosEmbedKind.Learnable) throw new ArgumentException("a DINO backbone uses a learnable position embedding (PosEmbed = Learnable).");
        var head = cfg.Head.Validate();
        var crops = cfg.Crops.Validate(backbone.PatchSize);
        if (crops.GlobalSize != backbone.ImageSize) throw new ArgumentException($"the global crops ({crops.GlobalSize}) must be the model's image size ({backbone.ImageSize}).");
        var dino = cfg.Dino.Validate(cfg.Trainer.Epochs);
        if (cfg.SaveckpFreq < 0) throw new ArgumentException($"--saveckp-freq must be >= 0 (0 = no snapshots), got {cfg.SaveckpFreq}.");
        if (head.UseBn && dist.WorldSize > 1) throw new ArgumentException("--use-bn-in-head needs synchronized batch norm, which data-parallel runs here do not have: run it in one process or leave it off.");
        var trainerOptions = TrainerOptionsFor(cfg, dist.WorldSize).Validate(dist.WorldSize);
        if (dist.IsMain) Directory.CreateDirectory(outDir);
        manual_seed(cfg.Trainer.Seed);
        using var student = new MultiCropWrapper(new VisionTransformer(backbone), new DinoHead(backbone.EmbedDim, head));
        var teacherConfig = backbone with { DropPathRate = 0 };
        using var teacher = new MultiCropWrapper(new VisionTransformer(teacherConfig), new DinoHead(backbone.EmbedDim, head with { NormLastLayer = true }));
        StateDictLoader.Load(teacher, student.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal));
        // Built on the host (the seeded init is the same on every device), then moved.
        student.to(ctx.Device);
        teacher.to(ctx.Device);

        var augmentation = new DinoAugmentation(crops);
        var loader = new DataLoader(DatasetFactory.Open(cfg.DataRoot, DataSplit.Train), augmentation, new DataLoaderOptions
        {
            BatchSize = trainerOptions.BatchSize, Seed = trainerOptions.Seed, DropLast = true, Workers = cfg.Workers,
            Rank = dist.Rank, WorldSize = dist.WorldSize, Log = log,
        });
        int accum = trainerOptions.AccumulationSteps(dist.WorldSize);
        int iterationsPerEpoch = loader.BatchesPerEpoch / accum;
        if (iterationsPerEpoch < 1) throw new ArgumentException($"an epoch has {loader.BatchesPerEpoch} batches, fewer than one optimizer step: lower --batch-size.");
        var schedule = DinoSchedule.Create(trainerOptions.Lr!.Value, trainerOptions.MinLr, dino.WarmupEpochs, dino.WeightDecay, dino.WeightDecayEnd,
            dino.MomentumTeacher, trainerOptions.Epochs, iterationsPerEpoch);
        using var loss = new DinoLoss(head.OutDim, crops.Crops, dino.WarmupTeacherTemp, dino.TeacherTemp, dino.WarmupTeacherTempEpochs, trainerOptions.Epochs,
            dino.StudentTemp, dino.CenterMomentum, ctx.Device);
        var task = new DinoTrainingTask(student, teacher, loss, augmentation.Layout, schedule, dino.ClipGrad, dino.FreezeLastLayer, dist);

        string dinoCheckpoint = Path.Combine(outDir, DinoCheckpoint);
        Trainer? trainer = null;
        trainer = new Trainer(task, loader, trainerOptions, new TrainerRun
        {
            Context = ctx, Resume = cfg.Resume, ModelConfig = backbone, StopAfterEpochs = cfg.StopAfterEpochs,
            // main_dino rewrites checkpoint.pth after every epoch.
            EpochEnd = e =>
            {
                if (!dist.IsMain) return;
                DinoCheckpointFile.Save(dinoCheckpoint, student, teacher, trainer!.Optimizer, e.Epoch + 1, cfg.Args, loss.Center);
                if (cfg.SaveckpFreq > 0 && (e.Epoch + 1) % cfg.SaveckpFreq == 0)
                    BackboneExport.SaveSafetensors(teacher.Backbone, Path.Combine(outDir, $"teacher-{e.Epoch + 1:D4}.safetensors"), teacherConfig);
                e.Log?.Write("epoch", e.Epoch, new Dictionary<string, object>
                {
                    ["kind"] = DinoTrainingTask.TaskKind, ["epoch"] = e.Epoch,
                    ["teacher_temp"] = loss.TeacherTemperatures[Math.Min(e.Epoch, loss.TeacherTemperatures.Count - 1)],
                    ["momentum"] = DinoSchedule.At(schedule.Momentum, (long)(e.Epoch + 1) * iterationsPerEpoch - 1),
                    ["wd"] = DinoSchedule.At(schedule.WeightDecay, (long)(e.Epoch + 1) * iterationsPerEpoch - 1),
                });
            },
        });
        // The untrained backbone, saved once: the random-init baseline k-NN compares against.
        string initial = Path.Combine(outDir, InitialTeacherFile);
        if (dist.IsMain && !File.Exists(initial) && CheckpointFiles.List(outDir).Count == 0)
            BackboneExport.SaveSafetensors(teacher.Backbone, initial, teacherConfig);
        var result = trainer.Run();
        string teacherPath = Path.Combine(outDir, TeacherFile);
        if (dist.IsMain)
        {
            BackboneExport.SaveSafetensors(teacher.Backbone, teacherPath, teacherConfig);
            BackboneExport.SavePth(teacher.Backbone, Path.Combine(outDir, TeacherPthFile));
            MetricsFile.Merge(Path.Combine(outDir, "metrics.json"), "pretrain_dino", new Dictionary<string, object>
            {
                ["epochs"] = result.EpochsDone, ["optimizer_steps"] = result.OptimizerSteps,
                ["final_loss"] = result.LastEpochLoss, ["images_per_s"] = result.ImagesPerSecond,
            });
        }
        ctx.RecordRun("pretrain-dino", trainerOptions.Precision == ComputePrecision.BFloat16 ? "bf16" : "fp32");
        return new DinoPretrainJobResult(result, teacherPath, dinoCheckpoint);
    }

    /// <summary>main_dino's argument names and this run's values, for checkpoint.pth's args.</summary>
    /// <param name="arch">The model name the run was given (main_dino's --arch).</param>
    /// <param name="outDir">The run folder (main_dino's --output_dir).</param>
    public static Dictionary<string, object> ArgsOf(DinoPretrainJobConfig cfg, string arch, string outDir) => new()
    {
        ["arch"] = arch, ["patch_size"] = cfg.Backbone.PatchSize, ["embed_dim"] = cfg.Backbone.EmbedDim, ["depth"] = cfg.Backbone.Depth, ["num_heads"] = cfg.Backbone.NumHeads,
        ["out_dim"] = cfg.Head.OutDim, ["norm_last_layer"] = cfg.Head.NormLastLayer, ["momentum_teacher"] = cfg.Dino.MomentumTeacher,
        ["use_bn_in_head"] = cfg.Head.UseBn, ["warmup_teacher_temp"] = cfg.Dino.WarmupTeacherTemp, ["teacher_temp"] = cfg.Dino.TeacherTemp,
        ["warmup_teacher_temp_epochs"] = cfg.Dino.WarmupTeacherTempEpochs, ["use_fp16"] = false, ["weight_decay"] = cfg.Dino.WeightDecay,
        ["weight_decay_end"] = cfg.Dino.WeightDecayEnd, ["clip_grad"] = cfg.Dino.ClipGrad, ["batch_size_per_gpu"] = cfg.Trainer.BatchSize,
        ["epochs"] = cfg.Trainer.Epochs, ["freeze_last_layer"] = cfg.Dino.FreezeLastLayer, ["lr"] = cfg.Dino.Lr, ["warmup_epochs"] = cfg.Dino.WarmupEpochs,
        ["min_lr"] = cfg.Dino.MinLr, ["optimizer"] = "adamw", ["drop_path_rate"] = cfg.Backbone.DropPathRate,
        ["global_crops_scale"] = new object[] { cfg.Crops.GlobalScaleMin, cfg.Crops.GlobalScaleMax }, ["local_crops_number"] = cfg.Crops.LocalCropsNumber,
        ["local_crops_scale"] = new object[] { cfg.Crops.LocalScaleMin, cfg.Crops.LocalScaleMax }, ["data_path"] = cfg.DataRoot,
        ["output_dir"] = outDir, ["seed"] = cfg.Trainer.Seed, ["num_workers"] = cfg.Workers,
        ["image_size"] = cfg.Backbone.ImageSize, ["local_crops_size"] = cfg.Crops.LocalSize,
    };
}
