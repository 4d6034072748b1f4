using static TorchSharp.torch;

namespace AttnDistill.Distillation;

/// <summary>
/// One step's loss and its parts, all 0-d tensors: <see cref="Total"/> = <see cref="Cls"/> + <see cref="Attn"/>.
/// The weights are already applied. Total carries the graph for backward(); the parts are for logging.
/// </summary>
public sealed record LossParts(Tensor Total, Tensor Cls, Tensor Attn) : IDisposable
{
    /// <summary>True when the total is a finite number (docs/METHOD.md, section 1.8: otherwise the batch is skipped).</summary>
    public bool IsFinite
    {
        get
        {
            using var asDouble = Total.detach().to_type(ScalarType.Float64);
            return double.IsFinite(asDouble.item<double>());
        }
    }

    public void Dispose()
    {
        Total.Dispose();
        Cls.Dispose();
        Attn.Dispose();
    }
}
