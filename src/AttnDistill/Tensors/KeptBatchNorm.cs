using TorchSharp.Modules;
using static TorchSharp.torch;

namespace AttnDistill.Tensors;

/// <summary>
/// BatchNorm's forward with its counter step over a kept Scalar. TorchSharp's
/// <c>BatchNorm.forward</c> runs <c>num_batches_tracked.add_(1)</c> in training, a temporary
/// Scalar that the GC can free while libtorch reads it (see <see cref="KeptScalars"/>). This is
/// that forward, op for op (the same running-statistics update and the same F.batch_norm call),
/// so results and state dicts are unchanged.
/// </summary>
public static class KeptBatchNorm
{
    public static Tensor ForwardKept(this BatchNorm bn, Tensor input)
    {
        double factor = bn.momentum ?? 0.0;
        if (bn.training && bn.track_running_stats && bn.num_batches_tracked is { } tracked)
        {
            tracked.add_(KeptScalars.One, KeptScalars.One);
            factor = bn.momentum ?? 1.0 / tracked.item<long>();
        }
        bool batchStatistics = bn.training || (bn.running_mean is null && bn.running_var is null);
        bool useRunning = !bn.training || bn.track_running_stats;
        return nn.functional.batch_norm(input, useRunning ? bn.running_mean : null, useRunning ? bn.running_var : null,
            bn.weight, bn.bias, batchStatistics, factor, bn.eps);
    }
}
