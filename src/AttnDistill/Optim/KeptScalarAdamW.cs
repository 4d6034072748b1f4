using AttnDistill.Tensors;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace AttnDistill.Optim;

/// <summary>
/// TorchSharp's AdamW with every number handed to libtorch held in a Scalar that lives until the
/// step returns. TorchSharp 0.107's <c>AdamW.step</c> converts each coefficient (1 - lr x wd,
/// beta1, 1 - beta1, ..., -step size) into a temporary Scalar per parameter, which the GC can
/// free while libtorch reads it (see Tensors/KeptScalars). The update is TorchSharp's, op for op
/// and value for value (bit-identical: Optim/KeptScalarAdamW tests), and the class is an
/// <see cref="AdamW"/>, so its options, state and state dict (DINO's checkpoint) are unchanged.
/// </summary>
public sealed class KeptScalarAdamW : AdamW
{
    public KeptScalarAdamW(IEnumerable<ParamGroup> groups, double lr, double beta1, double beta2, double eps, double weightDecay)
        : base(groups, lr, beta1, beta2, eps, weightDecay, amsgrad: false, maximize: false)
    {
    }

    public override Tensor step(Func<Tensor>? closure = null) => _step<ParamGroup>(group =>
    {
        var options = (Options)group.Options;
        double beta1 = options.beta1!.Value, beta2 = options.beta2!.Value, weightDecay = options.weight_decay!.Value;
        double eps = options.eps!.Value, lr = options.LearningRate!.Value;
        bool amsgrad = options.amsgrad!.Value, maximize = options.maximize!.Value;
        using Scalar decay = (1 - lr * weightDecay).ToScalar(), beta1Scalar = beta1.ToScalar(), oneMinusBeta1 = (1 - beta1).ToScalar(),
            beta2Scalar = beta2.ToScalar(), oneMinusBeta2 = (1 - beta2).ToScalar();
        foreach (var param in group.Parameters)
        {
            var state = (State)_state[param.Handle];
            var grad = param.grad;
            if (grad is null) continue;
            if (maximize) grad = -grad;
            state.step += 1;
            param.mul_(decay);
            double biasCorrection1 = 1 - Math.Pow(beta1, state.step);
            double biasCorrection2 = 1 - Math.Pow(beta2, state.step);
            state.exp_avg.mul_(beta1Scalar).add_(grad, alpha: oneMinusBeta1);
            state.exp_avg_sq.mul_(beta2Scalar).addcmul_(grad, grad, value: oneMinusBeta2);
            Tensor denom;
            if (amsgrad)
            {
                var previous = state.max_exp_avg_sq;
                state.max_exp_avg_sq = maximum(previous, state.exp_avg_sq).DetachFromDisposeScope();
                previous.Dispose();
                denom = state.max_exp_avg_sq.sqrt().DividedBy(Math.Sqrt(biasCorrection2)).PlusInPlace(eps);
            }
            else denom = state.exp_avg_sq.sqrt().DividedBy(Math.Sqrt(biasCorrection2)).PlusInPlace(eps);
            using var minusStepSize = (-(lr / biasCorrection1)).ToScalar();
            param.addcdiv_(state.exp_avg, denom, value: minusStepSize);
        }
    }, closure);
}
