using AttnDistill.Data;

namespace AttnDistill.Tests.TestSupport;

/// <summary>
/// Separable in-memory images: each class is a fixed random RGB template; an item is its class
/// template plus seeded per-pixel noise. Optionally some items fail to decode. Harder than
/// <see cref="SyntheticImageDataset"/> (whole-image templates, not one bright square), so a probe
/// of 10 classes has something to separate.
/// </summary>
public sealed class ClassTemplateDataset : IImageDataset
{
    readonly byte[][] _templates;
    readonly int _side, _seed, _noise;
    readonly HashSet<int> _unreadable;

    public ClassTemplateDataset(int count, int classes, int side = 16, int seed = 0, int noise = 40, IEnumerable<int>? unreadable = null)
    {
        Count = count;
        _side = side;
        _seed = seed;
        _noise = noise;
        var rng = new Random(1234); // templates shared by every split
        _templates = Enumerable.Range(0, classes).Select(_ =>
        {
            var t = new byte[side * side * 3];
            rng.NextBytes(t);
            return t;
        }).ToArray();
        ClassNames = Enumerable.Range(0, classes).Select(c => $"class{c}").ToArray();
        _unreadable = new HashSet<int>(unreadable ?? Array.Empty<int>());
    }

    public int Count { get; }
    public IReadOnlyList<string> ClassNames { get; }
    public int Channels => 3;
    public int Label(int index) => (index * 7 + 3) % ClassNames.Count;

    public DecodedImage Load(int index)
    {
        if (_unreadable.Contains(index)) throw new InvalidDataException($"item {index} is unreadable (test)");
        var rng = new Random(_seed * 1_000_003 + index);
        var t = _templates[Label(index)];
        var px = new byte[t.Length];
        for (int i = 0; i < px.Length; i++) px[i] = (byte)Math.Clamp(t[i] + rng.Next(-_noise, _noise + 1), 0, 255);
        return new DecodedImage(_side, _side, 3, px);
    }

    public string ItemName(int index) => $"synthetic#{index}";
}
