using AttnDistill.Data;

namespace AttnDistill.Benchmarks;

/// <summary>Grey square images in memory: a data set that exists only so a loader can be built.</summary>
internal sealed class ConstantImageDataset(int count, int size) : IImageDataset
{
    public int Count => count;
    public IReadOnlyList<string> ClassNames { get; } = new[] { "grey" };
    public int Channels => 3;
    public int Label(int index) => 0;
    public string ItemName(int index) => $"grey#{index}";
    public DecodedImage Load(int index) => new(size, size, 3, Enumerable.Repeat((byte)128, size * size * 3).ToArray());
}
