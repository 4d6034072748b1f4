using AttnDistill.Tensors;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace AttnDistill.Optim;

/// <summary>
/// LARS as in MAE's util/lars.py (from MoCo v3), the linear-probing optimizer of MAE:
/// SGD with momentum whose update for tensors of rank &gt; 1 is (grad + wd x p) scaled by the
/// trust ratio q = trust_coefficient x |p| / |grad + wd x p| (q = 1 when either norm is 0);
/// tensors of rank &lt;= 1 (biases, norm weights) take the raw gradient: no weight decay, no trust
/// ratio. Then mu = momentum x mu + update and p -= lr x mu (no dampening, no Nesterov).
/// <para>
/// A TorchSharp <see cref="OptimizerHelper"/>: <see cref="torch.optim.Optimizer.ParamGroups"/>
/// expose a settable LearningRate, so the shared trainer schedules it like AdamW, and
/// save_state_dict / load_state_dict (BinaryWriter / BinaryReader) round-trip the per-group
/// options and the momentum buffers like TorchSharp's own optimizers.
/// </para>
/// </summary>
public sealed class Lars : OptimizerHelper, torch.optim.IMomentum
{
    /// <summary>Per-group hyper-parameters (null: take the optimizer's default).</summary>
    public sealed class Options : OptimizerOptions
    {
        public double? WeightDecay { get; set; }
        public double? Momentum { get; set; }
        public double? TrustCoefficient { get; set; }

        public override void SaveStateDict(BinaryWriter writer)
        {
            base.SaveStateDict(writer);
            writer.Write(WeightDecay!.Value);
            writer.Write(Momentum!.Value);
            writer.Write(TrustCoefficient!.Value);
        }

        public override void LoadStateDict(BinaryReader reader)
        {
            base.LoadStateDict(reader);
            WeightDecay = reader.ReadDouble();
            Momentum = reader.ReadDouble();
            TrustCoefficient = reader.ReadDouble();
        }

        public override void LoadStateDict(OptimizerOptions source)
        {
            base.LoadStateDict(source);
            var o = (Options)source;
            WeightDecay = o.WeightDecay;
            Momentum = o.Momentum;
            TrustCoefficient = o.TrustCoefficient;
        }
    }

    /// <summary>A group of parameters with its own options (lr, weight decay ...).</summary>
    public sealed class ParamGroup : ParamGroup<Options>
    {
        public ParamGroup() { }
        public ParamGroup(IEnumerable<Parameter> parameters, Options? options = null) : base(parameters, options ?? new Options()) { }
        public ParamGroup(IEnumerable<Parameter> parameters, double lr, double? weightDecay = null)
            : base(parameters, new Options { LearningRate = lr, WeightDecay = weightDecay }) { }
    }

    /// <summary>The momentum buffer ("mu" in MAE), created at the first step.</summary>
    public sealed class State : OptimizerState, IDisposable
    {
        public Tensor? Mu;

        public State(Parameter parameter) : base(parameter) { }

        /// <summary>Momentum starts at zero (MAE's zeros_like), created lazily at the first step.</summary>
        public override void Initialize(OptimizerOptions options) { }

        public void Dispose()
        {
            Mu?.Dispose();
            Mu = null;
        }

        public override void to(Device device)
        {
            if (Mu is null) return;
            var moved = Mu.to(device).DetachFromDisposeScope();
            if (!ReferenceEquals(moved, Mu)) Mu.Dispose();
            Mu = moved;
        }

        public override void SaveStateDict(BinaryWriter writer) => SaveConditionalStateTensor(writer, Mu);

        public override void LoadStateDict(BinaryReader reader)
        {
            Tensor? mu = Mu;
            LoadConditionalStateTensor(reader, ref mu!, _parameter.device);
            Mu = mu?.DetachFromDisposeScope();
        }

        public override void LoadStateDict(OptimizerState source)
        {
            var other = (State)source;
            Mu?.Dispose();
            Mu = other.Mu?.detach().clone().DetachFromDisposeScope();
        }

        public override bool ApproximatelyEquals(OptimizerState other) =>
            other is State s && (Mu is null ? s.Mu is null : s.Mu is not null && Mu.allclose(s.Mu));
    }

    /// <summary>One group over <paramref name="parameters"/>; MAE's defaults.</summary>
    public Lars(IEnumerable<Parameter> parameters, double lr = 0, double weightDecay = 0, double momentum = 0.9, double trustCoefficient = 0.001)
        : this(new[] { new ParamGroup(parameters) }, lr, weightDecay, momentum, trustCoefficient) { }

    /// <summary>Several groups; options a group leaves null take these defaults.</summary>
    public Lars(IEnumerable<ParamGroup> groups, double lr = 0, double weightDecay = 0, double momentum = 0.9, double trustCoefficient = 0.001)
    {
        if (lr < 0) throw new ArgumentException($"LARS lr must be >= 0, got {lr}.");
        if (weightDecay < 0) throw new ArgumentException($"LARS weight decay must be >= 0, got {weightDecay}.");
        if (momentum < 0) throw new ArgumentException($"LARS momentum must be >= 0, got {momentum}.");
        if (trustCoefficient <= 0) throw new ArgumentException($"LARS trust coefficient must be positive, got {trustCoefficient}.");
        _defaults = new Options
        {
            LearningRate = lr, InitialLearningRate = lr,
            WeightDecay = weightDecay, Momentum = momentum, TrustCoefficient = trustCoefficient,
        };
        _parameter_groups = new List<TorchSharp.Modules.ParamGroup>();
        foreach (var g in groups) add_param_group(g);
    }

    /// <summary>Momentum of every group (the getter reads the first group).</summary>
    public double Momentum
    {
        get => ((Options)_parameter_groups[0].Options).Momentum!.Value;
        set { foreach (var g in _parameter_groups) ((Options)g.Options).Momentum = value; }
    }

    public override void add_param_group(TorchSharp.Modules.ParamGroup paramGroup)
    {
        var defaults = (Options)_defaults;
        paramGroup.Options ??= new Options();
        var opt = paramGroup.Options as Options
                  ?? throw new ArgumentException("LARS parameter groups need Lars.Options.");
        opt.LearningRate ??= defaults.LearningRate;
        opt.WeightDecay ??= defaults.WeightDecay;
        opt.Momentum ??= defaults.Momentum;
        opt.TrustCoefficient ??= defaults.TrustCoefficient;
        opt.InitialLearningRate = opt.LearningRate!.Value;
        // Materialize once: the group is enumerated at every step and by state_dict.
        paramGroup.Parameters = paramGroup.Parameters.ToArray();
        _parameter_groups.Add(paramGroup);
        foreach (var p in paramGroup.Parameters) _state[p.Handle] = new State(p);
    }

    public override Tensor step(Func<Tensor>? closure = null) => _step<TorchSharp.Modules.ParamGroup>(group =>
    {
        var o = (Options)group.Options;
        double lr = o.LearningRate!.Value, wd = o.WeightDecay!.Value, momentum = o.Momentum!.Value, trust = o.TrustCoefficient!.Value;
        // Held across every libtorch call of the group (see Tensors/KeptScalars).
        using Scalar wdScalar = wd.ToScalar(), trustScalar = trust.ToScalar(), momentumScalar = momentum.ToScalar(), minusLr = (-lr).ToScalar();
        foreach (var p in group.Parameters)
        {
            var grad = p.grad;
            if (grad is null) continue;
            var update = grad;
            if (p.dim() > 1)
            {
                // Everything stays on the device: no .item() synchronisation per tensor.
                update = update.add(p, alpha: wdScalar);
                var wNorm = p.norm();
                var uNorm = update.norm();
                var one = ones_like(wNorm);
                var ratio = wNorm.mul(trustScalar).div(uNorm);
                var q = where(wNorm.gt(KeptScalars.Zero), where(uNorm.gt(KeptScalars.Zero), ratio, one), one);
                update = update.mul(q);
            }
            var state = (State)_state[p.Handle];
            state.Mu ??= zeros_like(p).DetachFromDisposeScope();
            state.Mu.mul_(momentumScalar).PlusInPlace(update);
            p.add_(state.Mu, alpha: minusLr);
        }
    }, closure);

    protected override void Dispose(bool disposing)
    {
        base.Dispose(disposing);
        foreach (var (_, state) in _state) ((State)state).Dispose();
        _state.Clear();
    }
}
