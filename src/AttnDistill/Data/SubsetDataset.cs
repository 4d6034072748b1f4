namespace AttnDistill.Data;

/// <summary>A view of some items of another data set (labels and classes unchanged), like torch's <c>Subset</c>.</summary>
public sealed class SubsetDataset : IImageDataset
{
    private readonly IImageDataset _inner;
    private readonly int[] _indices;

    public SubsetDataset(IImageDataset inner, IReadOnlyList<int> indices)
    {
        _inner = inner;
        _indices = indices.ToArray();
        foreach (int i in _indices)
            if ((uint)i >= (uint)inner.Count) throw new ArgumentOutOfRangeException(nameof(indices), $"index {i} not in [0, {inner.Count})");
    }

    /// <summary>The data set this is a view of.</summary>
    public IImageDataset Source => _inner;

    /// <summary>Indices into the inner data set, in subset order.</summary>
    public IReadOnlyList<int> Indices => _indices;
    public int Count => _indices.Length;
    public IReadOnlyList<string> ClassNames => _inner.ClassNames;
    public int Channels => _inner.Channels;
    public int Label(int index) => _inner.Label(_indices[index]);
    public DecodedImage Load(int index) => _inner.Load(_indices[index]);
    public string ItemName(int index) => _inner.ItemName(_indices[index]);
}
