namespace AttnDistill.Data.Transforms;

/// <summary>torchvision's <c>RandomApply([t], p)</c>: the step runs unless <c>p &lt; torch.rand(1)</c>.</summary>
public sealed class RandomApply : IImageTransform
{
    private readonly IImageTransform _step;

    public RandomApply(IImageTransform step, double p)
    {
        if (!(p >= 0 && p <= 1)) throw new ArgumentOutOfRangeException(nameof(p), $"probability must be in [0, 1], got {p}");
        _step = step;
        P = p;
    }

    public double P { get; }
    public (int Width, int Height)? OutputSize => null;

    // torchvision skips when p < torch.rand(1): the step runs when the draw is <= p.
    public DecodedImage Apply(DecodedImage image, IRandomSource random) => P < random.Unit() ? image : _step.Apply(image, random);
}
