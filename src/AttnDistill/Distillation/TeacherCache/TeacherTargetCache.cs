using System.IO.MemoryMappedFiles;
using AttnDistill.Data;
using AttnDistill.Models;
using static TorchSharp.torch;

namespace AttnDistill.Distillation.TeacherCache;

/// <summary>
/// The teacher's targets for every image of every epoch of one seeded augmentation stream, so that
/// later runs over the same stream (every attention row of Table 10) train without the teacher's
/// forward. DIR holds cache.json (<see cref="TeacherCacheHeader"/>) and one memory-mapped file per
/// epoch, epoch-NNNN.bin while it is filled and renamed when the epoch ends. A row per data-set
/// index: a float64 fingerprint of the augmented image (its pixel sum), then the feature target,
/// the attention rows (blocks x heads x tokens) and, with value weighting, the value norms, in the
/// header's dtype. The fingerprint is what makes a read safe: a row is used only for the very image
/// it was computed from.
/// </summary>
public sealed class TeacherTargetCache : IDisposable
{
    const string HeaderFile = "cache.json";
    const double FingerprintTolerance = 1e-9;

    readonly string _dir;
    readonly TeacherCacheHeader _header;
    readonly int _elementBytes, _featureLength, _attentionLength;
    readonly long _rowBytes;
    readonly Dictionary<int, MemoryMappedFile> _files = new();
    readonly Dictionary<int, MemoryMappedViewAccessor> _views = new();

    TeacherTargetCache(string dir, TeacherCacheHeader header)
    {
        _dir = dir;
        _header = header;
        _elementBytes = header.Dtype == "float16" ? 2 : 4;
        _featureLength = header.FeatureShape.Aggregate(1, (a, b) => a * b);
        _attentionLength = header.AttentionShape.Aggregate(1, (a, b) => a * b);
        _rowBytes = 8 + (long)_elementBytes * (_featureLength + _attentionLength * (header.ValueNorms ? 2 : 1));
    }

    public TeacherCacheHeader Header => _header;

    /// <summary>Bytes of one epoch's file.</summary>
    public long EpochBytes => _rowBytes * _header.Images;

    /// <summary>Opens DIR for this run: creates it (and its header) when new, refuses it when its header differs from <paramref name="header"/>.</summary>
    public static TeacherTargetCache Open(string dir, TeacherCacheHeader header)
    {
        if (header.Dtype is not ("float16" or "float32"))
            throw new ArgumentException($"--teacher-cache-dtype must be float16 or float32, got '{header.Dtype}'.");
        if (File.Exists(dir)) throw new ArgumentException($"--teacher-cache {dir} is a file; pass a folder (created when missing).");
        Directory.CreateDirectory(dir);
        string path = Path.Combine(dir, HeaderFile);
        if (File.Exists(path))
        {
            var cached = TeacherCacheHeader.Deserialize(File.ReadAllText(path), path);
            if (cached.FirstMismatch(header) is { } mismatch)
                throw new ArgumentException($"--teacher-cache {dir} was filled for another run ({mismatch}); use another folder, or delete this one to fill it again.");
        }
        else Checkpoints.AtomicFile.Write(path, s => s.Write(System.Text.Encoding.UTF8.GetBytes(header.Serialize())));
        return new TeacherTargetCache(dir, header);
    }

    string FinalPath(int epoch) => Path.Combine(_dir, $"epoch-{epoch + 1:D4}.bin");
    string PartialPath(int epoch) => FinalPath(epoch) + ".partial";

    /// <summary>True when <paramref name="epoch"/> (0-based) was filled to its end: the run reads it instead of running the teacher.</summary>
    public bool Holds(int epoch) => File.Exists(FinalPath(epoch));

    /// <summary>Epochs filled so far (0-based).</summary>
    public IReadOnlyList<int> FilledEpochs() =>
        Directory.EnumerateFiles(_dir, "epoch-*.bin").Select(f => int.TryParse(Path.GetFileNameWithoutExtension(f)[6..], out int e) ? e - 1 : -1)
            .Where(e => e >= 0).Order().ToList();

    MemoryMappedViewAccessor View(int epoch, bool write)
    {
        if (_views.TryGetValue(epoch, out var view)) return view;
        string path = write ? PartialPath(epoch) : FinalPath(epoch);
        bool fresh = write && !File.Exists(path);
        if (fresh)
        {
            using var fs = new FileStream(path, FileMode.CreateNew, FileAccess.ReadWrite);
            fs.SetLength(EpochBytes);
        }
        else if (new FileInfo(path).Length != EpochBytes)
            throw new InvalidDataException($"--teacher-cache: {path} holds {new FileInfo(path).Length} bytes, its header says {EpochBytes}; delete the file to fill that epoch again.");
        var file = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, write ? MemoryMappedFileAccess.ReadWrite : MemoryMappedFileAccess.Read);
        view = file.CreateViewAccessor(0, 0, write ? MemoryMappedFileAccess.ReadWrite : MemoryMappedFileAccess.Read);
        // NaN marks a row not written yet (a zero pixel sum is a real fingerprint).
        if (fresh) for (long r = 0; r < _header.Images; r++) view.Write(r * _rowBytes, double.NaN);
        _files[epoch] = file;
        _views[epoch] = view;
        return view;
    }

    static double[] Fingerprints(Tensor images)
    {
        using var scope = NewDisposeScope();
        return images.detach().to(ScalarType.Float64).sum(new long[] { 1, 2, 3 }).cpu().data<double>().ToArray();
    }

    /// <summary>Stores the teacher's targets for <paramref name="batch"/> (an epoch being filled).</summary>
    public void Write(DataBatch batch, Tensor feature, IReadOnlyList<BlockAttention> attention)
    {
        var view = View(batch.Epoch, write: true);
        var prints = Fingerprints(batch.Images);
        var f = Host(feature, batch.Count, _featureLength);
        var a = _attentionLength == 0 ? null : Host(Stack(attention.Select(x => x.ClsAttention)), batch.Count, _attentionLength);
        var v = _header.ValueNorms ? Host(Stack(attention.Select(x => x.ValueNorms!)), batch.Count, _attentionLength) : null;
        for (int b = 0; b < batch.Count; b++)
        {
            long at = batch.Indices[b] * _rowBytes;
            view.Write(at, prints[b]);
            at += 8;
            at = Put(view, at, f, b * _featureLength, _featureLength);
            if (a is not null) at = Put(view, at, a, b * _attentionLength, _attentionLength);
            if (v is not null) Put(view, at, v, b * _attentionLength, _attentionLength);
        }
    }

    /// <summary>The cached targets of <paramref name="batch"/> (a filled epoch) on <paramref name="device"/>, float32, shaped as the teacher gives them.</summary>
    public (Tensor Feature, BlockAttention[] Attention) Read(DataBatch batch, Device device)
    {
        var view = View(batch.Epoch, write: false);
        var prints = Fingerprints(batch.Images);
        int n = batch.Count;
        var f = new float[n * _featureLength];
        var a = new float[n * _attentionLength];
        var v = _header.ValueNorms ? new float[n * _attentionLength] : null;
        for (int b = 0; b < n; b++)
        {
            int index = batch.Indices[b];
            long at = index * _rowBytes;
            double cached = view.ReadDouble(at);
            if (double.IsNaN(cached))
                throw new InvalidDataException($"--teacher-cache {_dir}: epoch {batch.Epoch + 1} holds no targets for image {index}: the cache was filled from another data order; delete the folder to fill it again.");
            if (Math.Abs(cached - prints[b]) > FingerprintTolerance * Math.Max(1, Math.Abs(cached)))
                throw new InvalidDataException($"--teacher-cache {_dir}: image {index} of epoch {batch.Epoch + 1} is not the image the cache was filled from (pixel sum {prints[b]:R} vs {cached:R}): the augmentation stream differs (seed, crop settings, data or transforms); delete the folder to fill it again.");
            at += 8;
            at = Get(view, at, f, b * _featureLength, _featureLength);
            if (_attentionLength > 0) at = Get(view, at, a, b * _attentionLength, _attentionLength);
            if (v is not null) Get(view, at, v, b * _attentionLength, _attentionLength);
        }
        var featureShape = new long[] { n }.Concat(_header.FeatureShape.Select(d => (long)d)).ToArray();
        var feature = tensor(f, featureShape).to(device);
        var attention = new BlockAttention[_attentionLength == 0 ? 0 : _header.AttentionShape[0]];
        if (attention.Length > 0)
        {
            long heads = _header.AttentionShape[1], tokens = _header.AttentionShape[2];
            using var all = tensor(a, new long[] { n, attention.Length, heads, tokens });
            using var norms = v is null ? null : tensor(v, new long[] { n, attention.Length, heads, tokens });
            for (int k = 0; k < attention.Length; k++)
                attention[k] = new BlockAttention(all.select(1, k).contiguous().to(device), norms?.select(1, k).contiguous().to(device));
        }
        return (feature, attention);
    }

    /// <summary>Marks <paramref name="epoch"/> filled (after the run's last batch of it); returns its file's bytes, or null when nothing was filled this run.</summary>
    public long? CompleteEpoch(int epoch)
    {
        if (!File.Exists(PartialPath(epoch))) return null;
        if (_views.Remove(epoch, out var view)) { view.Flush(); view.Dispose(); }
        if (_files.Remove(epoch, out var file)) file.Dispose();
        File.Move(PartialPath(epoch), FinalPath(epoch), overwrite: true);
        return EpochBytes;
    }

    static Tensor Stack(IEnumerable<Tensor> blocks) => stack(blocks.ToArray(), 1);   // (B, blocks, heads, tokens)

    float[] Host(Tensor t, int batch, int perImage)
    {
        using var scope = NewDisposeScope();
        var host = t.detach().to(ScalarType.Float32).cpu().contiguous();
        if (host.numel() != (long)batch * perImage)
            throw new InvalidOperationException($"teacher target of shape [{string.Join(", ", t.shape)}] does not fit the cache's {perImage} values per image.");
        return host.data<float>().ToArray();
    }

    long Put(MemoryMappedViewAccessor view, long at, float[] values, int start, int count)
    {
        if (_elementBytes == 4) view.WriteArray(at, values, start, count);
        else
        {
            var half = new Half[count];
            for (int i = 0; i < count; i++) half[i] = (Half)values[start + i];
            view.WriteArray(at, half, 0, count);
        }
        return at + (long)count * _elementBytes;
    }

    long Get(MemoryMappedViewAccessor view, long at, float[] values, int start, int count)
    {
        if (_elementBytes == 4) view.ReadArray(at, values, start, count);
        else
        {
            var half = new Half[count];
            view.ReadArray(at, half, 0, count);
            for (int i = 0; i < count; i++) values[start + i] = (float)half[i];
        }
        return at + (long)count * _elementBytes;
    }

    public void Dispose()
    {
        foreach (var v in _views.Values) { v.Flush(); v.Dispose(); }
        foreach (var f in _files.Values) f.Dispose();
        _views.Clear();
        _files.Clear();
    }
}
