using AttnDistill.Checkpoints;
using AttnDistill.Data;
using AttnDistill.Distributed;
using AttnDistill.Training;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace AttnDistill.Pretraining.Dino;

/// <summary>main_dino's per-iteration schedules, one value per optimizer step (utils.cosine_scheduler).</summary>
/// <param name="Lr">Peak lr x batch / 256 with a linear warm-up, cosine to min_lr.</param>
/// <param name="WeightDecay">weight_decay -> weight_decay_end, regularized group only.</param>
/// <param name="Momentum">Teacher EMA momentum, momentum_teacher -> 1.</param>
public sealed record DinoSchedule(double[] Lr, double[] WeightDecay, double[] Momentum, int IterationsPerEpoch)
{
    public static DinoSchedule Create(double lr, double minLr, int warmupEpochs, double weightDecay, double weightDecayEnd,
        double momentumTeacher, int epochs, int iterationsPerEpoch) =>
        new(DinoSchedules.Cosine(lr, minLr, epochs, iterationsPerEpoch, warmupEpochs),
            DinoSchedules.Cosine(weightDecay, weightDecayEnd, epochs, iterationsPerEpoch),
            DinoSchedules.Cosine(momentumTeacher, 1, epochs, iterationsPerEpoch),
            iterationsPerEpoch);

    /// <summary>Value i of a schedule; past its end (a resumed run given more epochs) the last one.</summary>
    public static double At(double[] schedule, long i) => schedule[Math.Min(i, schedule.Length - 1)];
}

/// <summary>
/// DINO self-distillation (main_dino.train_one_epoch) on the shared <see cref="Trainer"/>: the
/// student (<see cref="Model"/>) sees every crop, the momentum teacher only the two global ones;
/// the loss is <see cref="DinoLoss"/> with its centre updated on every batch. After gradients are
/// averaged over ranks the task sets the iteration's lr (all groups) and weight decay (the
/// regularized group), clips each parameter's gradient to --clip-grad and drops the last layer's
/// gradients during the first --freeze-last-layer epochs; after the step the teacher moves towards
/// the student with the iteration's momentum. The teacher and the centre are checkpointed through
/// <see cref="SaveState"/>, so a resumed run continues bit for bit.
/// </summary>
public sealed class DinoTrainingTask : ITrainingTask
{
    public const string TaskKind = "pretrain-dino";
    private const string TeacherPrefix = "teacher.";
    private const string CenterKey = "dino_loss.center";
    private long _iteration;

    public DinoTrainingTask(MultiCropWrapper student, MultiCropWrapper teacher, DinoLoss loss, MultiCropLayout layout,
        DinoSchedule schedule, double clipGrad, int freezeLastLayer, IDistributedContext? dist = null)
    {
        if (layout.Sizes.Count != loss.NCrops) throw new ArgumentException($"the crop layout has {layout.Sizes.Count} crops, the DINO loss expects {loss.NCrops}.");
        if (!(clipGrad >= 0)) throw new ArgumentException($"--clip-grad must be >= 0 (0 disables it), got {clipGrad}.");
        Student = student;
        Teacher = teacher;
        DinoLoss = loss;
        Layout = layout;
        Schedule = schedule;
        ClipGrad = clipGrad;
        FreezeLastLayer = freezeLastLayer;
        Distributed = dist;
        foreach (var p in teacher.parameters()) p.requires_grad = false;
    }

    public MultiCropWrapper Student { get; }
    public MultiCropWrapper Teacher { get; }
    public DinoLoss DinoLoss { get; }
    public MultiCropLayout Layout { get; }
    public DinoSchedule Schedule { get; }
    public double ClipGrad { get; }
    public int FreezeLastLayer { get; }
    public IDistributedContext? Distributed { get; }

    public nn.Module Model => Student;
    public string Kind => TaskKind;

    /// <summary>utils.get_params_groups: regularized (matrices) first, then biases and 1-D tensors without decay.</summary>
    public IReadOnlyList<ParameterGroup> ParameterGroups(double weightDecay) => Training.ParameterGroups.WeightDecaySplit(Student, weightDecay);

    /// <summary>Both in training mode, as main_dino (it never calls eval on the teacher; only a BN head notices).</summary>
    public void Train()
    {
        Student.train();
        Teacher.train();
    }

    /// <summary>The loss of the crops in a packed batch; the centre moves on with this batch's teacher outputs.</summary>
    public StepLoss Loss(DataBatch batch)
    {
        var crops = Layout.Split(batch.Images);
        Tensor teacherOutput;
        using (no_grad()) teacherOutput = Teacher.Forward(crops.Take(2).ToArray());
        var studentOutput = Student.Forward(crops);
        var loss = DinoLoss.Compute(studentOutput, teacherOutput, batch.Epoch);
        DinoLoss.UpdateCenter(teacherOutput, Distributed);
        return new StepLoss(loss, new Dictionary<string, Tensor>());
    }

    public void AfterGradientsAveraged(OptimizerHelper optimizer, long iteration)
    {
        _iteration = iteration;
        int i = 0;
        foreach (var group in optimizer.ParamGroups)
        {
            group.LearningRate = DinoSchedule.At(Schedule.Lr, iteration);
            if (i++ > 0) continue;
            if (group is not ParamGroup { Options: AdamW.Options adamw })
                throw new InvalidOperationException($"DINO's weight-decay schedule drives AdamW; the optimizer is a {optimizer.GetType().Name}.");
            adamw.weight_decay = DinoSchedule.At(Schedule.WeightDecay, iteration);
        }
        if (ClipGrad > 0) TeacherEma.ClipPerParameter(Student.parameters(), ClipGrad);
        TeacherEma.CancelLastLayer(Student, (int)(iteration / Schedule.IterationsPerEpoch), FreezeLastLayer);
    }

    public void AfterOptimizerStep() => TeacherEma.Update(Student, Teacher, DinoSchedule.At(Schedule.Momentum, _iteration));

    /// <summary>The teacher's state dict and the centre: live tensors, owned by the task.</summary>
    public CheckpointSection? SaveState()
    {
        var section = new CheckpointSection { Json = "{\"kind\":\"dino\"}" };
        foreach (var (name, t) in Teacher.state_dict()) section.Tensors[TeacherPrefix + name] = t;
        section.Tensors[CenterKey] = DinoLoss.Center;
        return section;
    }

    public void LoadState(CheckpointSection state)
    {
        var teacher = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var (name, t) in state.Tensors)
            if (name.StartsWith(TeacherPrefix, StringComparison.Ordinal)) teacher[name[TeacherPrefix.Length..]] = t;
        if (teacher.Count == 0 || !state.Tensors.TryGetValue(CenterKey, out var center))
            throw new CheckpointFormatException("the checkpoint's task section holds no DINO teacher or centre: it is not a pretrain-dino checkpoint; start a new run or resume the right folder.");
        using (no_grad())
        {
            foreach (var (name, t) in Teacher.state_dict())
            {
                if (!teacher.TryGetValue(name, out var saved)) throw new CheckpointFormatException($"the checkpoint's DINO teacher has no '{name}': built from another configuration.");
                if (!ReferenceEquals(saved, t)) t.copy_(saved);
            }
            if (!ReferenceEquals(center, DinoLoss.Center)) DinoLoss.LoadCenter(center);
        }
    }
}
