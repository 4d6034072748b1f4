namespace AttnDistill.Data.Transforms;

/// <summary>
/// <c>ToTensor()</c> + <c>Normalize(mean, std)</c> for one image, written straight into float CHW
/// memory (a slice of the batch tensor): a 256-entry table per channel holds
/// <c>((float)v / 255 - mean) / std</c> computed with the same float32 operations as torchvision,
/// so values are bit-identical, at one lookup per pixel value.
/// </summary>
public sealed class PixelNormalizer
{
    private readonly float[][] _table;

    /// <param name="channels">1 or 3.</param>
    /// <param name="mean">Per-channel mean, or null (with std null) for plain [0, 1] values.</param>
    public PixelNormalizer(int channels, IReadOnlyList<float>? mean, IReadOnlyList<float>? std)
    {
        if ((mean is null) != (std is null)) throw new ArgumentException("give both mean and std, or neither");
        if (mean is not null && (mean.Count != channels || std!.Count != channels))
            throw new ArgumentException($"mean/std have {mean.Count}/{std!.Count} values for {channels} channel(s)");
        Channels = channels;
        _table = new float[channels][];
        for (int c = 0; c < channels; c++)
        {
            _table[c] = new float[256];
            for (int v = 0; v < 256; v++)
            {
                float x = v / 255f;
                _table[c][v] = mean is null ? x : (x - mean[c]) / std![c];
            }
        }
    }

    public int Channels { get; }

    /// <summary>Writes the image as C planes of H*W floats (CHW) into dst.</summary>
    public void WriteChw(DecodedImage image, Span<float> dst)
    {
        int c = image.Channels, plane = image.Width * image.Height;
        if (c != Channels) throw new ArgumentException($"image has {c} channel(s), normalizer {Channels}");
        if (dst.Length < plane * c) throw new ArgumentException("destination too small", nameof(dst));
        var px = image.Pixels;
        for (int ch = 0; ch < c; ch++)
        {
            var table = _table[ch];
            var outPlane = dst.Slice(ch * plane, plane);
            for (int p = 0, s = ch; p < plane; p++, s += c) outPlane[p] = table[px[s]];
        }
    }
}
