using AttnDistill.Tensors;
using AttnDistill.Data;
using AttnDistill.Optim;
using AttnDistill.Training;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace AttnDistill.Evaluation;

/// <summary>
/// Linear probing with on-the-fly augmented features (MAE's main_linprobe: RandomResizedCrop +
/// flip, features recomputed every batch by the frozen backbone) as a task of the shared
/// <see cref="Trainer"/>. Only the sweep's heads are trained and checkpointed; the backbone stays
/// in eval mode under no_grad. Build the trainer with <see cref="LarsFactory"/>, TrainerOptions
/// BaseLr = <see cref="ReferenceBaseLr"/> and WeightDecay 0: every head then follows the
/// trainer's schedule scaled to its own base lr.
/// </summary>
public sealed class LinearProbeTask : ITrainingTask
{
    private readonly nn.Module<Tensor, Tensor> _backbone;
    private readonly LinearProbeSweep _sweep;
    private readonly Device _device;

    /// <param name="referenceBaseLr">The base lr the trainer schedules (TrainerOptions.BaseLr); head k gets baseLr_k / reference of it.</param>
    public LinearProbeTask(nn.Module<Tensor, Tensor> backbone, LinearProbeSweep sweep, double referenceBaseLr, Device? device = null)
    {
        if (!(referenceBaseLr > 0)) throw new ArgumentException($"reference base lr must be positive, got {referenceBaseLr}.");
        _backbone = backbone;
        _sweep = sweep;
        ReferenceBaseLr = referenceBaseLr;
        _device = device ?? CPU;
    }

    public double ReferenceBaseLr { get; }
    public LinearProbeSweep Sweep => _sweep;
    public nn.Module Model => _sweep;
    public string Kind => "linear";

    public IReadOnlyList<ParameterGroup> ParameterGroups(double weightDecay) => _sweep.ParameterGroups(ReferenceBaseLr, weightDecay);

    public void Train()
    {
        _sweep.train();
        _backbone.eval();
    }

    public StepLoss Loss(DataBatch batch)
    {
        Tensor features;
        using (var noGrad = torch.no_grad())
            features = _backbone.forward(batch.Images.to(_device)).detach();                // (B, D)
        var total = _sweep.Loss(features, batch.Labels.to(_device));
        var perHead = total.detach().DividedBy((long)_sweep.BaseLrs.Count);
        return new StepLoss(total, new Dictionary<string, Tensor> { ["ce_mean_per_head"] = perHead });
    }

    /// <summary>
    /// The trainer's optimizer factory for linear probing: LARS (momentum 0.9, MAE's trust
    /// coefficient) with one group per head at lr x LrScale.
    /// </summary>
    public static OptimizerHelper LarsFactory(IReadOnlyList<ParameterGroup> groups, TrainerOptions options, double lr) =>
        new Lars(groups.Select(g => new Lars.ParamGroup(g.Parameters.Select(p => p.Param), lr * g.LrScale, g.WeightDecay)).ToArray(),
            lr, weightDecay: 0, momentum: 0.9);
}
