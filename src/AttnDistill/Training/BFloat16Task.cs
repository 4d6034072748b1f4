using AttnDistill.Checkpoints;
using AttnDistill.Data;
using TorchSharp.Modules;
using TorchSharp;
using static TorchSharp.torch;

namespace AttnDistill.Training;

/// <summary>
/// bf16 training with fp32 master weights, by hand (TorchSharp 0.107 has no autocast). The inner
/// task runs forward and backward on a bf16 copy of the trained module; the optimizer, the
/// checkpoints and the exported weights see only the fp32 master module. Before each optimizer
/// step the bf16 gradients are copied into the masters' fp32 gradients; after it the updated
/// masters are cast back into the copy. Losses should be computed in fp32 from bf16 outputs (the
/// distillation task and MAE's loss do so), as autocast would.
/// <para>
/// Under gradient accumulation the micro-batch gradients add up in bf16 on the copy: fine for a
/// few micro-batches, not for hundreds.
/// </para>
/// </summary>
public sealed class BFloat16Task : ITrainingTask
{
    private readonly ITrainingTask _inner;
    private readonly nn.Module _master;
    private readonly (Parameter Master, Parameter Copy)[] _pairs;
    private readonly Dictionary<string, Parameter> _masterByName;
    private bool _stale = true;

    /// <param name="inner">The task over the bf16 copy (its <c>Model</c> is the copy).</param>
    /// <param name="master">The fp32 module with the same parameter names; what is optimized and saved.</param>
    public BFloat16Task(ITrainingTask inner, nn.Module master)
    {
        _inner = inner;
        _master = master;
        _masterByName = master.named_parameters().ToDictionary(kv => kv.name, kv => kv.parameter, StringComparer.Ordinal);
        var copies = inner.Model.named_parameters().ToDictionary(kv => kv.name, kv => kv.parameter, StringComparer.Ordinal);
        if (!copies.Keys.Order().SequenceEqual(_masterByName.Keys.Order()))
            throw new ArgumentException("the bf16 copy and the fp32 master module have different parameters: build the copy from the same configuration.");
        _pairs = _masterByName.Where(kv => kv.Value.requires_grad).Select(kv => (kv.Value, copies[kv.Key])).ToArray();
        foreach (var (m, c) in _pairs)
            if (!m.shape.SequenceEqual(c.shape) || !c.requires_grad)
                throw new ArgumentException("the bf16 copy's trainable parameters must match the master's in shape and requires_grad.");
    }

    /// <summary>A bf16 copy of <paramref name="master"/>: <paramref name="build"/> makes a module of the same architecture.</summary>
    public static T CopyInBFloat16<T>(T master, Func<T> build) where T : nn.Module
    {
        var copy = build();
        using (no_grad())
        {
            var source = master.named_parameters().ToDictionary(kv => kv.name, kv => kv.parameter, StringComparer.Ordinal);
            foreach (var (name, p) in copy.named_parameters()) p.copy_(source[name]);
        }
        copy.to(ScalarType.BFloat16);
        return copy;
    }

    public nn.Module Model => _master;
    public ITrainingTask Inner => _inner;
    public string Kind => _inner.Kind;

    /// <summary>The inner task's groups, mapped by name onto the fp32 masters.</summary>
    public IReadOnlyList<ParameterGroup> ParameterGroups(double weightDecay) =>
        _inner.ParameterGroups(weightDecay)
            .Select(g => g with { Parameters = g.Parameters.Select(p => (p.Name, _masterByName[p.Name])).ToArray() })
            .ToArray();

    public void Train()
    {
        _master.train();
        _inner.Train();
    }

    public StepLoss Loss(DataBatch batch)
    {
        if (_stale) CopyMastersIn();
        return _inner.Loss(batch);
    }

    public void BeforeOptimizerStep()
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        foreach (var (m, c) in _pairs)
        {
            if (c.grad is not { } g) continue;
            if (m.grad is { } mg) mg.copy_(g);
            else m.grad = g.to(ScalarType.Float32).DetachFromDisposeScope();
            g.zero_();
        }
        _inner.BeforeOptimizerStep();
    }

    public void AfterOptimizerStep()
    {
        CopyMastersIn();
        _inner.AfterOptimizerStep();
    }

    public CheckpointSection? SaveState() => _inner.SaveState();

    public void LoadState(CheckpointSection state)
    {
        _inner.LoadState(state);
        _stale = true;
    }

    /// <summary>Casts the fp32 masters into the bf16 copy (also after a resume or a broadcast).</summary>
    private void CopyMastersIn()
    {
        using var _ = no_grad();
        foreach (var (m, c) in _pairs) c.copy_(m);
        _stale = false;
    }
}
