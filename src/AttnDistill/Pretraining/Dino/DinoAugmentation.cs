using AttnDistill.Data;
using AttnDistill.Data.Transforms;

namespace AttnDistill.Pretraining.Dino;

/// <summary>The crops of DINO's multi-crop (main_dino's --global_crops_scale, --local_crops_number, --local_crops_scale).</summary>
public sealed record DinoCropConfig
{
    /// <summary>Side of the two global crops (the model's image size).</summary>
    public required int GlobalSize { get; init; }
    /// <summary>Side of the local crops; DINO uses 96 for 224 (see <see cref="DefaultLocalSize"/>).</summary>
    public required int LocalSize { get; init; }
    public double GlobalScaleMin { get; init; } = 0.4;
    public double GlobalScaleMax { get; init; } = 1.0;
    public int LocalCropsNumber { get; init; } = 8;
    public double LocalScaleMin { get; init; } = 0.05;
    public double LocalScaleMax { get; init; } = 0.4;

    /// <summary>
    /// DINO blurs with radius (0.1, 2) pixels of a 224 crop; the radius is scaled by GlobalSize / 224
    /// here, so a blur removes the same fraction of the image at 28 or 32 pixels.
    /// </summary>
    public double BlurRadiusScale => GlobalSize / 224.0;

    public int Crops => 2 + LocalCropsNumber;

    /// <summary>size x 96 / 224 rounded to the nearest multiple of the patch size (96 for 224/16, 12 for 28/4 and 32/4), at least one patch.</summary>
    public static int DefaultLocalSize(int imageSize, int patchSize) =>
        Math.Max(patchSize, (int)Math.Round(imageSize * 96.0 / 224 / patchSize, MidpointRounding.AwayFromZero) * patchSize);

    public DinoCropConfig Validate(int patchSize)
    {
        if (GlobalSize <= 0 || LocalSize <= 0) throw new ArgumentException($"crop sizes must be positive (global {GlobalSize}, local {LocalSize}).");
        if (LocalSize % patchSize != 0) throw new ArgumentException($"--local-crops-size {LocalSize} is not a multiple of the patch size {patchSize}: use {DefaultLocalSize(GlobalSize, patchSize)}.");
        if (LocalCropsNumber < 0) throw new ArgumentException($"--local-crops-number must be >= 0, got {LocalCropsNumber}.");
        CheckScale("--global-crops-scale", GlobalScaleMin, GlobalScaleMax);
        CheckScale("--local-crops-scale", LocalScaleMin, LocalScaleMax);
        return this;
    }

    static void CheckScale(string flag, double lo, double hi)
    {
        if (!(lo > 0 && lo <= hi && hi <= 1)) throw new ArgumentException($"{flag} must be two area fractions 0 < min <= max <= 1, got ({lo}, {hi}).");
    }
}

/// <summary>
/// main_dino.DataAugmentationDINO, per crop: RandomResizedCrop (bicubic), then flip (p 0.5),
/// colour jitter (0.4, 0.4, 0.2, 0.1) with p 0.8 and grayscale with p 0.2; then Gaussian blur with
/// p 1.0 on the first global crop, 0.1 and solarization p 0.2 on the second, 0.5 on each local crop.
/// All crops of one image are packed into one square image (see <see cref="MultiCropLayout"/>) so
/// the shared <see cref="DataLoader"/> batches, seeds and shards them as any other transform.
/// </summary>
public sealed class DinoAugmentation : IImageTransform
{
    private readonly IImageTransform[] _crops;

    public DinoAugmentation(DinoCropConfig config)
    {
        Config = config;
        Layout = new MultiCropLayout(Enumerable.Repeat(config.GlobalSize, 2).Concat(Enumerable.Repeat(config.LocalSize, config.LocalCropsNumber)).ToArray());
        double rMin = 0.1 * config.BlurRadiusScale, rMax = 2.0 * config.BlurRadiusScale;
        IImageTransform[] FlipAndColorJitter() => new IImageTransform[]
        {
            new RandomHorizontalFlip(0.5),
            new RandomApply(new ColorJitter(0.4, 0.4, 0.2, 0.1), 0.8),
            new RandomGrayscale(0.2),
        };
        var global = new RandomResizedCrop(config.GlobalSize, config.GlobalScaleMin, config.GlobalScaleMax);
        var local = new RandomResizedCrop(config.LocalSize, config.LocalScaleMin, config.LocalScaleMax);
        var crops = new List<IImageTransform>
        {
            new Compose(new IImageTransform[] { global }.Concat(FlipAndColorJitter()).Append(new GaussianBlur(1.0, rMin, rMax)).ToArray()),
            new Compose(new IImageTransform[] { global }.Concat(FlipAndColorJitter()).Append(new GaussianBlur(0.1, rMin, rMax)).Append(new Solarization(0.2)).ToArray()),
        };
        for (int i = 0; i < config.LocalCropsNumber; i++)
            crops.Add(new Compose(new IImageTransform[] { local }.Concat(FlipAndColorJitter()).Append(new GaussianBlur(0.5, rMin, rMax)).ToArray()));
        _crops = crops.ToArray();
    }

    public DinoCropConfig Config { get; }
    public MultiCropLayout Layout { get; }
    public (int Width, int Height)? OutputSize => (Layout.PackedSide, Layout.PackedSide);

    public DecodedImage Apply(DecodedImage image, IRandomSource random) =>
        Layout.Pack(_crops.Select(c => c.Apply(image, random)).ToArray());
}
