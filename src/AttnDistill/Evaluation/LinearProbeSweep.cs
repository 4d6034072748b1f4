using AttnDistill.Training;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace AttnDistill.Evaluation;

/// <summary>
/// K linear-probe heads over the same frozen features, each trained with its own learning rate
/// (DINO's eval_linear sweep trains its classifiers side by side the same way): one pass over
/// the data trains the whole sweep. Heads are independent: the summed loss gives each head
/// exactly the gradient of its own loss.
/// </summary>
public sealed class LinearProbeSweep : nn.Module<Tensor, Tensor>
{
    private readonly ModuleList<LinearProbeHead> heads;

    /// <param name="baseLrs">Per head: base lr (peak lr = base lr x batch / 256, MAE's rule).</param>
    public LinearProbeSweep(long inFeatures, long numClasses, IReadOnlyList<double> baseLrs) : base(nameof(LinearProbeSweep))
    {
        if (baseLrs.Count == 0) throw new ArgumentException("the lr sweep needs at least one lr.");
        if (baseLrs.Any(lr => !(lr > 0))) throw new ArgumentException($"sweep lrs must be positive, got {string.Join(", ", baseLrs)}.");
        BaseLrs = baseLrs.ToArray();
        NumClasses = numClasses;
        heads = new ModuleList<LinearProbeHead>(baseLrs.Select(_ => new LinearProbeHead(inFeatures, numClasses)).ToArray());
        RegisterComponents();
    }

    public IReadOnlyList<double> BaseLrs { get; }
    public long NumClasses { get; }
    public ModuleList<LinearProbeHead> Heads => heads;

    /// <summary>[B, D] -> [K, B, C] logits of every head.</summary>
    public override Tensor forward(Tensor features) => stack(heads.Select(h => h.forward(features)).ToArray());

    /// <summary>Sum over heads of the mean cross-entropy of each head.</summary>
    public Tensor Loss(Tensor features, Tensor labels)
    {
        var logits = forward(features);                                                    // (K, B, C)
        long k = logits.shape[0], b = logits.shape[1];
        var perSample = nn.functional.cross_entropy(logits.reshape(k * b, -1), labels.repeat(k), reduction: nn.Reduction.None);
        return perSample.view(k, b).mean(new long[] { 1 }).sum();
    }

    /// <summary>
    /// One optimizer group per head (no weight decay, MAE's linear probing), with LrScale =
    /// base lr of the head / <paramref name="referenceBaseLr"/>: a trainer that sets
    /// lr = schedule(reference) x LrScale gives every head its own lr on the same schedule.
    /// </summary>
    public IReadOnlyList<ParameterGroup> ParameterGroups(double referenceBaseLr, double weightDecay = 0) =>
        heads.Select((h, i) => new ParameterGroup($"head{i}",
            h.named_parameters().Select(np => ($"heads.{i}.{np.name}", np.parameter)).ToArray(),
            weightDecay, BaseLrs[i] / referenceBaseLr)).ToArray();
}
