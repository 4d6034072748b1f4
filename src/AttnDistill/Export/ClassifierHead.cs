using AttnDistill.Tensors;
using static TorchSharp.torch;

namespace AttnDistill.Export;

/// <summary>
/// A linear classifier on the backbone feature, optionally after a BatchNorm in eval mode (MAE's
/// linear-probe head: BatchNorm1d without affine, eps 1e-6, then Linear). logits = W x̂ + b with
/// x̂ = (x - running_mean) / sqrt(running_var + eps) [* bn weight + bn bias] when a BatchNorm is present.
/// </summary>
/// <param name="Weight">(classes, features).</param>
/// <param name="Bias">(classes), or null.</param>
/// <param name="Keys">The names the tensors had in the head file, by role: weight, bias, running_mean, running_var, bn_weight, bn_bias.</param>
public sealed record ClassifierHead(
    Tensor Weight,
    Tensor? Bias,
    Tensor? RunningMean,
    Tensor? RunningVar,
    Tensor? BnWeight,
    Tensor? BnBias,
    double BnEps,
    IReadOnlyDictionary<string, string> Keys) : IDisposable
{
    /// <summary>MAE's BatchNorm1d(eps=1e-6) of main_linprobe.py (also <see cref="Evaluation.LinearProbeHead"/>).</summary>
    public const double DefaultBnEps = 1e-6;

    public long NumClasses => Weight.shape[0];
    public long InFeatures => Weight.shape[1];
    public bool HasBatchNorm => RunningMean is not null;

    /// <summary>The head in TorchSharp, as the reference the exported graph is checked against: (B, D) -> (B, classes).</summary>
    public Tensor Forward(Tensor features)
    {
        using var scope = NewDisposeScope();
        var x = features;
        if (RunningMean is not null && RunningVar is not null)
        {
            x = (x - RunningMean) / RunningVar.Plus(BnEps).sqrt();
            if (BnWeight is not null) x = x * BnWeight;
            if (BnBias is not null) x = x.Plus(BnBias);
        }
        var y = x.matmul(Weight.t());
        if (Bias is not null) y = y.Plus(Bias);
        return y.MoveToOuterDisposeScope();
    }

    public void Dispose()
    {
        foreach (var t in new[] { Weight, Bias, RunningMean, RunningVar, BnWeight, BnBias }) t?.Dispose();
    }
}
