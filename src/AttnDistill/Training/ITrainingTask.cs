using AttnDistill.Checkpoints;
using AttnDistill.Data;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace AttnDistill.Training;

/// <summary>The loss of one micro-batch: the total to back-propagate and named parts to log.</summary>
/// <param name="Total">0-d tensor, requires grad.</param>
/// <param name="Parts">0-d tensors by name ("cls", "attn", "mae" ...), already weighted.</param>
/// <param name="Diagnostics">Called only when the step is skipped: min/max of maps and features.</param>
public sealed record StepLoss(Tensor Total, IReadOnlyDictionary<string, Tensor> Parts, Func<string>? Diagnostics = null);

/// <summary>
/// What differs between distillation, MAE pre-training, linear probing and fine-tuning; the
/// <see cref="Trainer"/> does everything else (schedule, accumulation, clipping, checkpoints,
/// resume, logging, distributed gradient averaging).
/// </summary>
public interface ITrainingTask
{
    /// <summary>The trained module: its state dict is what checkpoints save and resume restores.</summary>
    nn.Module Model { get; }

    /// <summary>Names shown in logs for this kind of run ("distill", "pretrain-mae" ...).</summary>
    string Kind { get; }

    /// <summary>Optimizer groups (weight decay, lr scale) over the trainable parameters.</summary>
    IReadOnlyList<ParameterGroup> ParameterGroups(double weightDecay) => Training.ParameterGroups.WeightDecaySplit(Model, weightDecay);

    /// <summary>Puts the trained parts in training mode (and frozen parts, like a teacher, in eval).</summary>
    void Train() => Model.train();

    /// <summary>Forward pass and loss of one micro-batch; runs inside the trainer's dispose scope.</summary>
    StepLoss Loss(DataBatch batch);

    /// <summary>Hook before each optimizer step, before gradients are averaged and clipped (e.g. gradients to adjust by hand).</summary>
    void BeforeOptimizerStep() { }

    /// <summary>
    /// Hook after gradients are averaged over ranks, before the trainer's own clipping and the
    /// optimizer step. <paramref name="iteration"/> is the global optimizer-step index (0-based,
    /// continued across resumes); a task with its own per-iteration schedules (DINO's lr, weight
    /// decay and per-parameter clipping) sets them on <paramref name="optimizer"/>'s groups here,
    /// in <see cref="ParameterGroups"/> order.
    /// </summary>
    void AfterGradientsAveraged(OptimizerHelper optimizer, long iteration) { }

    /// <summary>Hook after each optimizer step (e.g. a FIFO queue update).</summary>
    void AfterOptimizerStep() { }

    /// <summary>Extra state to checkpoint beside the model (e.g. CompRess's queue); null when none.</summary>
    CheckpointSection? SaveState() => null;

    void LoadState(CheckpointSection state) { }
}
