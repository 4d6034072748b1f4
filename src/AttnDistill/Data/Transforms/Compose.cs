namespace AttnDistill.Data.Transforms;

/// <summary>Applies transforms in order, as torchvision's <c>Compose</c>.</summary>
public sealed class Compose : IImageTransform
{
    private readonly IImageTransform[] _steps;

    public Compose(params IImageTransform[] steps) => _steps = steps.ToArray();

    public IReadOnlyList<IImageTransform> Steps => _steps;

    /// <summary>The size fixed by the last step that fixes one (later steps such as a flip keep it).</summary>
    public (int Width, int Height)? OutputSize
    {
        get
        {
            for (int i = _steps.Length - 1; i >= 0; i--)
            {
                if (_steps[i].OutputSize is { } size) return size;
                if (_steps[i] is not RandomHorizontalFlip) return null;
            }
            return null;
        }
    }

    public DecodedImage Apply(DecodedImage image, IRandomSource random)
    {
        foreach (var step in _steps) image = step.Apply(image, random);
        return image;
    }
}
