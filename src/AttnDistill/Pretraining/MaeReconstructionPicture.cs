using AttnDistill.Tensors;
using System.Runtime.InteropServices;
using AttnDistill.Checkpoints;
using SkiaSharp;
using static TorchSharp.torch;

namespace AttnDistill.Pretraining;

/// <summary>
/// The picture MAE's demo shows, one row per image: original | masked (removed patches grey) |
/// reconstruction (visible patches pasted over the prediction). Written as one PNG for
/// <c>pretrain-mae</c> to follow training by eye.
/// </summary>
public static class MaeReconstructionPicture
{
    /// <summary>Each tile is enlarged (nearest neighbour) to at least this many pixels: 32x32 images are too small to see.</summary>
    public const int MinTileSize = 96;
    const int Gap = 2;

    /// <summary>
    /// The picture as RGB bytes, (rows, cols, 3) uint8. <paramref name="images"/> are the
    /// normalized model inputs (B, C, S, S); <paramref name="mean"/>/<paramref name="std"/> undo the
    /// normalization per channel. With norm_pix_loss the prediction is in per-patch normalized units:
    /// it is mapped back with each patch's own mean and std (which peeks at the removed pixels; fine
    /// for a picture, it shows structure, not colour). The model's train/eval mode is restored.
    /// </summary>
    public static Tensor Render(MaskedAutoencoder mae, Tensor images, IReadOnlyList<float> mean, IReadOnlyList<float> std, Tensor? noise = null)
    {
        long c = images.shape[1];
        if (mean.Count != c || std.Count != c)
            throw new ArgumentException($"mean and std need one value per channel ({c}), got {mean.Count} and {std.Count}.");
        bool wasTraining = mae.training;
        mae.eval();
        try
        {
            using var scope = NewDisposeScope();
            using var _ = no_grad();
            // The samples are kept on the host; the model may sit on an accelerator. The canvas is drawn on the host.
            var device = Runs.RunDevice.Of(mae);
            images = images.to(device);
            noise = noise?.to(device);
            var output = mae.Forward(images, noise);
            var target = mae.Patchify(images);                                     // (B, L, p*p*C)
            var pred = output.Pred;
            if (mae.Config.NormPixLoss)
            {
                var m = target.mean(new long[] { -1 }, keepdim: true);
                var v = target.var(-1, unbiased: true, keepdim: true);
                pred = (pred * v.Plus(1e-6).sqrt()).Plus(m);
            }
            var removed = output.Mask.unsqueeze(-1);                               // (B, L, 1), 1 = removed
            var pasted = mae.Unpatchify((target * removed.SubtractedFrom(1L)).Plus(pred * removed));  // (B, C, S, S)
            var meanT = tensor(mean.ToArray(), device: images.device).reshape(1, c, 1, 1);
            var stdT = tensor(std.ToArray(), device: images.device).reshape(1, c, 1, 1);
            Tensor ToPixels(Tensor x) => (x * stdT).Plus(meanT).ClampTo(0, 1);
            var original = ToPixels(images);
            var holes = mae.Unpatchify(removed.expand_as(target).contiguous());     // 1 where removed
            var masked = (original * holes.SubtractedFrom(1L)).Plus(holes.Times(0.5));
            var reconstructed = ToPixels(pasted);
            return Grid(new[] { original, masked, reconstructed }).MoveToOuterDisposeScope();
        }
        finally
        {
            mae.train(wasTraining);
        }
    }

    /// <summary>Columns of (B, C, S, S) pictures in [0, 1] -> (rows, cols, 3) uint8 on white, tiles enlarged.</summary>
    static Tensor Grid(IReadOnlyList<Tensor> columns)
    {
        long b = columns[0].shape[0], s = columns[0].shape[2];
        long scale = Math.Max(1, (MinTileSize + s - 1) / s), tile = s * scale;
        var canvas = ones(3, b * (tile + Gap) + Gap, columns.Count * (tile + Gap) + Gap);
        for (int col = 0; col < columns.Count; col++)
        {
            var rgb = columns[col].shape[1] == 1 ? columns[col].expand(-1, 3, -1, -1) : columns[col].narrow(1, 0, 3);
            var big = rgb.repeat_interleave(scale, 2).repeat_interleave(scale, 3).cpu();  // (B, 3, tile, tile)
            for (long row = 0; row < b; row++)
                canvas.narrow(1, Gap + row * (tile + Gap), tile).narrow(2, Gap + col * (tile + Gap), tile).copy_(big[row]);
        }
        return canvas.Times(255).round().ClampTo(0, 255).to(ScalarType.Byte).permute(1, 2, 0).contiguous();
    }

    /// <summary>Renders and writes the PNG (atomically); returns its path.</summary>
    public static string Write(MaskedAutoencoder mae, Tensor images, string path, IReadOnlyList<float> mean, IReadOnlyList<float> std, Tensor? noise = null)
    {
        using var rgb = Render(mae, images, mean, std, noise);
        int h = (int)rgb.shape[0], w = (int)rgb.shape[1];
        using var alpha = KeptScalars.Full(new long[] { h, w, 1 }, (byte)255, ScalarType.Byte);
        using var rgbaT = cat(new[] { rgb, alpha }, 2);                          // (rows, cols, 4)
        byte[] rgba = rgbaT.data<byte>().ToArray();
        using var bitmap = new SKBitmap(new SKImageInfo(w, h, SKColorType.Rgba8888, SKAlphaType.Opaque));
        if (bitmap.RowBytes != w * 4) throw new InvalidOperationException($"unexpected bitmap stride {bitmap.RowBytes} for width {w}.");
        Marshal.Copy(rgba, 0, bitmap.GetPixels(), rgba.Length);
        using var image = SKImage.FromBitmap(bitmap);
        using var png = image.Encode(SKEncodedImageFormat.Png, 100);
        AtomicFile.Write(path, s => png.SaveTo(s));
        return path;
    }
}
