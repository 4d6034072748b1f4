using AttnDistill.Tensors;
using static TorchSharp.torch;

namespace AttnDistill.Training;

/// <summary>
/// An exponential moving average of a model's weights, as timm's ModelEmaV2 (DeiT's and iBOT's
/// --model-ema): after every optimizer step each floating-point entry of the state dict becomes
/// decay x ema + (1 - decay) x model; integer buffers (BatchNorm's counters) are copied. The
/// average lives in a second model of the same architecture, evaluated like the first.
/// </summary>
public sealed class ModelEma
{
    readonly nn.Module _ema;
    readonly Dictionary<string, Tensor> _emaState;

    /// <param name="ema">A model of the same architecture as the trained one; its weights are replaced by the trained model's now.</param>
    public ModelEma(nn.Module ema, nn.Module source, double decay)
    {
        if (!(decay is >= 0 and < 1)) throw new ArgumentException($"--model-ema-decay must be in [0, 1) (DeiT: 0.99996), got {decay}.");
        _ema = ema;
        Decay = decay;
        _emaState = ema.state_dict();
        foreach (var p in ema.parameters()) p.requires_grad = false;
        ema.eval();
        Copy(source);
    }

    public double Decay { get; }
    public nn.Module Model => _ema;

    void Copy(nn.Module source)
    {
        var src = source.state_dict();
        using var noGrad = no_grad();
        foreach (var (key, dst) in _emaState) dst.copy_(Source(src, key));
    }

    static Tensor Source(Dictionary<string, Tensor> src, string key) =>
        src.TryGetValue(key, out var t) ? t : throw new ArgumentException($"model EMA: the trained model has no '{key}'; the EMA copy must have the same architecture.");

    /// <summary>One update, after an optimizer step: ema = decay x ema + (1 - decay) x model.</summary>
    public void Update(nn.Module source)
    {
        var src = source.state_dict();
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        foreach (var (key, dst) in _emaState)
        {
            var s = Source(src, key);
            if (dst.is_floating_point()) dst.TimesInPlace(Decay).PlusInPlace(s.detach(), 1 - Decay);
            else dst.copy_(s);
        }
    }

    /// <summary>The averaged weights, for checkpoints (resume continues the same average).</summary>
    public Dictionary<string, Tensor> State() => _emaState.ToDictionary(kv => "ema." + kv.Key, kv => kv.Value);

    /// <summary>Restores <see cref="State"/> from a checkpoint section.</summary>
    public void Load(IReadOnlyDictionary<string, Tensor> tensors)
    {
        using var noGrad = no_grad();
        foreach (var (key, dst) in _emaState)
        {
            if (!tensors.TryGetValue("ema." + key, out var t))
                throw new ArgumentException($"the checkpoint holds no model EMA ('ema.{key}'): it was written without --model-ema; resume without it or start a new run.");
            dst.copy_(t);
        }
    }
}
