using AttnDistill.Data;
using static TorchSharp.torch;

namespace AttnDistill.Pretraining.Dino;

/// <summary>
/// Several square crops of different sizes carried as one square image: crop k's pixels, row by
/// row, fill positions [Offset_k, Offset_k + s_k^2) of the packed image in raster order, the rest is
/// zero. The loader's normalisation is per pixel and channel, so after it each crop is a slice of
/// the batch tensor's flattened planes: (B, C, P x P) narrowed and reshaped to (B, C, s_k, s_k).
/// </summary>
public sealed class MultiCropLayout
{
    public MultiCropLayout(IReadOnlyList<int> sizes)
    {
        if (sizes.Count == 0 || sizes.Any(s => s <= 0)) throw new ArgumentException("crop sizes must be positive and at least one.");
        Sizes = sizes.ToArray();
        var offsets = new long[sizes.Count];
        long total = 0;
        for (int i = 0; i < sizes.Count; i++) { offsets[i] = total; total += (long)sizes[i] * sizes[i]; }
        Offsets = offsets;
        PackedSide = (int)Math.Ceiling(Math.Sqrt(total));
        while ((long)PackedSide * PackedSide < total) PackedSide++;
    }

    public IReadOnlyList<int> Sizes { get; }
    public IReadOnlyList<long> Offsets { get; }
    public int PackedSide { get; }

    public DecodedImage Pack(IReadOnlyList<DecodedImage> crops)
    {
        if (crops.Count != Sizes.Count) throw new ArgumentException($"expected {Sizes.Count} crops, got {crops.Count}.");
        int c = crops[0].Channels;
        var packed = new byte[(long)PackedSide * PackedSide * c];
        for (int i = 0; i < crops.Count; i++)
        {
            var crop = crops[i];
            if (crop.Width != Sizes[i] || crop.Height != Sizes[i] || crop.Channels != c)
                throw new InvalidOperationException($"crop {i} is {crop.Width}x{crop.Height}x{crop.Channels}, expected {Sizes[i]}x{Sizes[i]}x{c}.");
            Array.Copy(crop.Pixels, 0, packed, Offsets[i] * c, crop.Pixels.Length);
        }
        return new DecodedImage(PackedSide, PackedSide, c, packed);
    }

    /// <summary>The crops of a packed batch (B, C, P, P): views (B, C, s_k, s_k), crop order.</summary>
    public Tensor[] Split(Tensor packed)
    {
        if (packed.dim() != 4 || packed.shape[2] != PackedSide || packed.shape[3] != PackedSide)
            throw new ArgumentException($"expected a packed batch (B, C, {PackedSide}, {PackedSide}), got [{string.Join(", ", packed.shape)}].");
        long b = packed.shape[0], c = packed.shape[1];
        using var flat = packed.reshape(b, c, (long)PackedSide * PackedSide);
        var crops = new Tensor[Sizes.Count];
        for (int i = 0; i < Sizes.Count; i++)
        {
            int s = Sizes[i];
            using var slice = flat.narrow(2, Offsets[i], (long)s * s);
            crops[i] = slice.reshape(b, c, s, s);
        }
        return crops;
    }
}
