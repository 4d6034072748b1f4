using AttnDistill.Tensors;
using AttnDistill.Checkpoints;
using SkiaSharp;
using static TorchSharp.torch;

namespace AttnDistill.Visualization;

/// <summary>Between libtorch pictures and SkiaSharp bitmaps, and PNG files (SkiaSharp's encoder).</summary>
public static class RgbPicture
{
    /// <summary>(3, H, W) float in [0, 1] -> an opaque RGBA bitmap.</summary>
    public static SKBitmap ToBitmap(Tensor chw)
    {
        if (chw.dim() != 3 || chw.shape[0] != 3) throw new ArgumentException($"picture must be (3, H, W), got [{string.Join(", ", chw.shape)}].");
        int h = (int)chw.shape[1], w = (int)chw.shape[2];
        var bitmap = new SKBitmap(new SKImageInfo(w, h, SKColorType.Rgba8888, SKAlphaType.Opaque));
        try
        {
            if (bitmap.RowBytes != w * 4) throw new InvalidOperationException($"unexpected bitmap stride {bitmap.RowBytes} for width {w}.");
            using var scope = NewDisposeScope();
            var bytes = chw.Times(255).round().ClampTo(0, 255).to(ScalarType.Byte).permute(1, 2, 0).cpu();  // (H, W, 3)
            var alpha = KeptScalars.Full(new long[] { h, w, 1 }, (byte)255, ScalarType.Byte);
            var rgba = cat(new[] { bytes, alpha }, 2).contiguous();                                   // (H, W, 4)
            // One block copy of the tensor's storage (TensorAccessor.ToArray goes element by element).
            unsafe { rgba.bytes.CopyTo(new Span<byte>((void*)bitmap.GetPixels(), h * w * 4)); }
        }
        catch
        {
            bitmap.Dispose();
            throw;
        }
        return bitmap;
    }

    /// <summary>Writes the bitmap as PNG (atomically).</summary>
    public static void SavePng(SKBitmap bitmap, string path)
    {
        using var image = SKImage.FromBitmap(bitmap);
        using var png = image.Encode(SKEncodedImageFormat.Png, 100)
            ?? throw new InvalidOperationException($"SkiaSharp could not encode {path} as PNG.");
        AtomicFile.Write(path, s => png.SaveTo(s));
    }

    /// <summary>The typeface of labels: DejaVu Sans (Debian's fonts-dejavu-core) when present, else Skia's default.</summary>
    public static SKTypeface LabelTypeface() =>
        SKTypeface.FromFamilyName("DejaVu Sans") ?? SKTypeface.Default;
}
