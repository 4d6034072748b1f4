using AttnDistill.Data;

namespace AttnDistill.Tests.TestSupport;

/// <summary>
/// Deterministic in-memory images: class c has a bright square at a class-specific place on
/// seeded noise, so a model can learn something in a few steps.
/// </summary>
public sealed class SyntheticImageDataset(int count, int size = 16, int classes = 4, int seed = 0) : IImageDataset
{
    public int Count => count;
    public IReadOnlyList<string> ClassNames { get; } = Enumerable.Range(0, classes).Select(c => $"class{c}").ToArray();
    public int Channels => 3;
    public int Label(int index) => index % classes;
    public string ItemName(int index) => $"synthetic#{index}";

    public DecodedImage Load(int index)
    {
        var rng = new Random(seed * 1_000_003 + index);
        var px = new byte[size * size * 3];
        rng.NextBytes(px);
        for (int i = 0; i < px.Length; i++) px[i] = (byte)(px[i] / 4);
        int c = Label(index), q = size / 2;
        int top = (c / 2) * q, left = (c % 2) * q;
        for (int y = top; y < top + q; y++)
            for (int x = left; x < left + q; x++)
                px[(y * size + x) * 3 + c % 3] = 255;
        return new DecodedImage(size, size, 3, px);
    }
}
