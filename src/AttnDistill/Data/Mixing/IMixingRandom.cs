using static TorchSharp.torch;

namespace AttnDistill.Data.Mixing;

/// <summary>
/// The draws timm's Mixup/CutMix (numpy) and RandomErasing (Python's random, torch's normal fill)
/// make, one method per kind, called in timm's order: a parity test replays timm's recorded draws
/// through it; training uses <see cref="TorchMixingRandom"/>.
/// </summary>
public interface IMixingRandom
{
    /// <summary><c>np.random.rand()</c> / <c>random.random()</c>: uniform in [0, 1).</summary>
    double Unit();

    /// <summary><c>random.uniform(low, high)</c>.</summary>
    double Uniform(double low, double high);

    /// <summary><c>np.random.randint(low, high)</c>: an integer in [low, high) (Python's inclusive randint(a, b) is Integer(a, b + 1)).</summary>
    int Integer(int low, int high);

    /// <summary><c>np.random.beta(alpha, alpha)</c>.</summary>
    double Beta(double alpha);

    /// <summary><c>torch.empty(shape).normal_()</c> on <paramref name="device"/>.</summary>
    Tensor Normal(long[] shape, ScalarType dtype, Device device);
}
