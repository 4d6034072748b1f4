namespace AttnDistill.Data.Transforms;

/// <summary>
/// A transform on decoded 8-bit images (the PIL stage of a torchvision pipeline: crops, resizes,
/// flips). Conversion to a normalised float tensor happens per batch in <see cref="ImageTensors"/>.
/// Implementations are stateless and thread-safe; all randomness comes from the source passed in.
/// </summary>
public interface IImageTransform
{
    DecodedImage Apply(DecodedImage image, IRandomSource random);

    /// <summary>The (width, height) of every output, or null when it depends on the input.</summary>
    (int Width, int Height)? OutputSize { get; }
}
