using TorchSharp;
using static TorchSharp.torch;

namespace AttnDistill.Data.Mixing;

/// <summary>How an erased box is filled (timm's --remode).</summary>
public enum ErasingMode
{
    /// <summary>Zeros (the normalized mean).</summary>
    Const,
    /// <summary>One normal draw per channel.</summary>
    Rand,
    /// <summary>One normal draw per pixel and channel (MAE's fine-tuning default).</summary>
    Pixel,
}

/// <summary>
/// Random erasing as timm's <c>RandomErasing</c> (Zhong et al. 2020), applied to a normalized batch
/// image by image: with probability p, 1..count boxes whose area is uniform in [2 %, 1/3] of the
/// image (divided by the count) and whose log aspect ratio is uniform in [log 0.3, log 1/0.3], placed
/// uniformly, 10 attempts per box, are overwritten with normal noise (pixel mode), a per-channel
/// normal colour (rand) or zeros (const). timm runs it in the loader on each normalized sample;
/// here it runs on the batch in the training step, after normalization, on the batch's device.
/// </summary>
public sealed class RandomErasing
{
    private readonly double _probability, _minArea, _maxArea, _logMinAspect, _logMaxAspect;
    private readonly int _minCount, _maxCount;
    private readonly ErasingMode _mode;
    private readonly IMixingRandom _random;

    /// <param name="probability">--reprob (MAE: 0.25).</param>
    /// <param name="maxCount">--recount (MAE: 1).</param>
    public RandomErasing(double probability, ErasingMode mode = ErasingMode.Pixel, int maxCount = 1, IMixingRandom? random = null,
        double minArea = 0.02, double maxArea = 1.0 / 3, double minAspect = 0.3)
    {
        if (!(probability is >= 0 and <= 1)) throw new ArgumentException($"--reprob must be in [0, 1], got {probability}.");
        if (maxCount < 1) throw new ArgumentException($"--recount must be >= 1, got {maxCount}.");
        _probability = probability;
        _mode = mode;
        _minCount = 1;
        _maxCount = maxCount;
        _minArea = minArea;
        _maxArea = maxArea;
        _logMinAspect = Math.Log(minAspect);
        _logMaxAspect = Math.Log(1 / minAspect);
        _random = random ?? TorchMixingRandom.Instance;
    }

    /// <summary>Erases boxes of every image of <paramref name="images"/> [B, C, H, W] in place; returns it.</summary>
    public Tensor Apply(Tensor images)
    {
        long b = images.shape[0], c = images.shape[1];
        int h = (int)images.shape[2], w = (int)images.shape[3];
        for (long i = 0; i < b; i++)
        {
            using var scope = NewDisposeScope();
            Erase(images[i], c, h, w);
        }
        return images;
    }

    private void Erase(Tensor image, long channels, int h, int w)
    {
        if (_random.Unit() > _probability) return;
        double area = h * w;
        int count = _minCount == _maxCount ? _minCount : _random.Integer(_minCount, _maxCount + 1);
        for (int n = 0; n < count; n++)
        {
            for (int attempt = 0; attempt < 10; attempt++)
            {
                double target = _random.Uniform(_minArea, _maxArea) * area / count;
                double aspect = Math.Exp(_random.Uniform(_logMinAspect, _logMaxAspect));
                // Python's round() rounds halves to even, as Math.Round does by default.
                int boxH = (int)Math.Round(Math.Sqrt(target * aspect)), boxW = (int)Math.Round(Math.Sqrt(target / aspect));
                if (boxW >= w || boxH >= h) continue;
                int top = _random.Integer(0, h - boxH + 1), left = _random.Integer(0, w - boxW + 1);
                var region = image.narrow(1, top, boxH).narrow(2, left, boxW);
                switch (_mode)
                {
                    case ErasingMode.Pixel:
                        region.copy_(_random.Normal(new[] { channels, boxH, boxW }, image.dtype, image.device));
                        break;
                    case ErasingMode.Rand:
                        region.copy_(_random.Normal(new[] { channels, 1L, 1L }, image.dtype, image.device).expand_as(region));
                        break;
                    default:
                        region.zero_();
                        break;
                }
                break;
            }
        }
    }
}
