namespace AttnDistill.Data.Transforms;

/// <summary>The two pipelines the method uses (normalisation happens per batch, see <see cref="ImageTensors"/>).</summary>
public static class TransformPresets
{
    /// <summary>RandomResizedCrop(size, scale=(scaleMin, 1), bicubic) + RandomHorizontalFlip(0.5).</summary>
    public static IImageTransform Train(int size, double scaleMin = 0.2) =>
        new Compose(new RandomResizedCrop(size, scaleMin), new RandomHorizontalFlip());

    /// <summary>
    /// Resize(short side = resizeSize, bicubic) + CenterCrop(size). The default resize is
    /// size * 256 / 224, truncated (256 for 224, 36 for 32), as DINO/MAE evaluate.
    /// </summary>
    public static IImageTransform Eval(int size, int? resizeSize = null) =>
        new Compose(new Resize(resizeSize ?? size * 256 / 224), new CenterCrop(size));
}
