using AttnDistill.Tensors;
using TorchSharp;
using static TorchSharp.torch;

namespace AttnDistill.Data.Transforms;

/// <summary>
/// torchvision's <c>ToTensor()</c> + <c>Normalize(mean, std)</c>, done once per batch with libtorch
/// ops: uint8 HWC -> float32 CHW in [0, 1] (x / 255), then (x - mean) / std, all in float32 as
/// torchvision computes them.
/// </summary>
public static class ImageTensors
{
    /// <summary>ImageNet's channel means (RGB), as every method in the paper normalises.</summary>
    public static IReadOnlyList<float> ImageNetMean { get; } = new[] { 0.485f, 0.456f, 0.406f };

    /// <summary>ImageNet's channel standard deviations (RGB).</summary>
    public static IReadOnlyList<float> ImageNetStd { get; } = new[] { 0.229f, 0.224f, 0.225f };

    /// <summary>One image as <c>ToTensor()</c> gives it: float32 [C, H, W] in [0, 1], not normalised.</summary>
    public static Tensor ToTensor(DecodedImage image)
    {
        using var scope = NewDisposeScope();
        var hwc = tensor(image.Pixels, new long[] { image.Height, image.Width, image.Channels }, dtype: ScalarType.Byte);
        return hwc.permute(2, 0, 1).contiguous().to_type(ScalarType.Float32).DividedByInPlace(255.0).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// A batch of same-size images stored back to back as HWC bytes, to a contiguous float32
    /// [B, C, H, W] tensor; normalised when mean and std are given (one value per channel).
    /// </summary>
    public static Tensor BatchFromHwc(byte[] pixels, int batch, int height, int width, int channels,
        IReadOnlyList<float>? mean, IReadOnlyList<float>? std)
    {
        if ((mean is null) != (std is null)) throw new ArgumentException("give both mean and std, or neither");
        if (mean is not null && (mean.Count != channels || std!.Count != channels))
            throw new ArgumentException($"mean/std have {mean.Count}/{std!.Count} values for {channels} channel(s)");
        long n = (long)batch * height * width * channels;
        using var scope = NewDisposeScope();
        if (pixels.LongLength < n) throw new ArgumentException($"buffer holds {pixels.LongLength} bytes, the batch needs {n}");
        // A view on the managed buffer (which may be longer than this batch); the copy happens in contiguous().
        var bytes = frombuffer(pixels, ScalarType.Byte, count: n, offset: 0).view(batch, height, width, channels); // (B, H, W, C)
        var x = bytes.permute(0, 3, 1, 2).contiguous().to_type(ScalarType.Float32).DividedByInPlace(255.0); // (B, C, H, W)
        if (mean is not null)
        {
            using var m = tensor(mean.ToArray()).view(1, channels, 1, 1);
            using var s = tensor(std!.ToArray()).view(1, channels, 1, 1);
            x.sub_(m).div_(s);
        }
        return x.MoveToOuterDisposeScope();
    }
}
