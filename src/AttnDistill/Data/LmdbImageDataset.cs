using System.Buffers.Binary;
using System.Text;
using AttnDistill.Checkpoints;
using LightningDB;

namespace AttnDistill.Data;

/// <summary>
/// One split packed into LMDB as the authors' <c>folder2lmdb.py</c> does (their <c>--lmdb</c>
/// option): keys "0", "1", ... listed in <c>__keys__</c>, <c>__len__</c>, and values
/// <c>pickle((encoded image, label))</c>. Packs from <see cref="LmdbPacker"/> add
/// <c>__classes__</c> (the class names) and <c>__labels__</c> (every label as int32, so labels are
/// known without reading the records); for the authors' packs the labels are read once at open
/// from each record's header and the bytes after its image (not the image itself), and classes are
/// named by their label.
/// Reads are memory-mapped and safe from several threads (one short read transaction per image).
/// </summary>
public sealed class LmdbImageDataset : IImageDataset, IDisposable
{
    public const string LengthKey = "__len__", KeysKey = "__keys__", ClassesKey = "__classes__", LabelsKey = "__labels__";

    private readonly LightningEnvironment _env;
    private readonly LightningDatabase _db;
    private readonly byte[][] _keys;
    private readonly int[] _labels;

    /// <param name="path">The LMDB file (as folder2lmdb.py writes, with its "-lock" file beside it) or an LMDB directory.</param>
    public LmdbImageDataset(string path)
    {
        if (!File.Exists(path) && !Directory.Exists(path)) throw new FileNotFoundException($"LMDB data set not found: {path}");
        LmdbLibrary.EnsureLoaded();
        _path = path;
        _env = new LightningEnvironment(path, new EnvironmentConfiguration { MaxReaders = 4096 });
        // LightningDB's finalizer throws (and so ends the process) for an environment nobody
        // disposed; data sets are often simply dropped, so this class's own finalizer closes it.
        GC.SuppressFinalize(_env);
        try
        {
            // As the authors' reader: read-only, no lock file writes (the data may be on a read-only share), no read-ahead.
            var flags = EnvironmentOpenFlags.ReadOnly | EnvironmentOpenFlags.NoLock | EnvironmentOpenFlags.NoReadAhead | EnvironmentOpenFlags.NoThreadLocalStorage;
            if (File.Exists(path)) flags |= EnvironmentOpenFlags.NoSubDir;
            _env.Open(flags);
            using var txn = _env.BeginTransaction(TransactionBeginFlags.ReadOnly);
            _db = txn.OpenDatabase();
            GC.SuppressFinalize(_db);
            int count = ReadInt(txn, LengthKey) ?? throw new InvalidDataException($"{path}: no {LengthKey} key: not an image LMDB as `attndistill data pack` or folder2lmdb.py writes");
            _keys = ReadList(txn, KeysKey)?.Select(k => k as byte[] ?? throw new InvalidDataException($"{path}: {KeysKey} holds a non-bytes key")).ToArray()
                ?? Enumerable.Range(0, count).Select(RecordKey).ToArray();
            if (_keys.Length != count) throw new InvalidDataException($"{path}: {KeysKey} lists {_keys.Length} keys but {LengthKey} says {count}");
            _labels = ReadLabels(txn, count) ?? ScanLabels(txn);
            var names = ReadList(txn, ClassesKey)?.Select(n => n as string ?? throw new InvalidDataException($"{path}: {ClassesKey} holds a non-string")).ToList();
            int classes = _labels.Length == 0 ? 0 : _labels.Max() + 1;
            if (names is not null && names.Count < classes) throw new InvalidDataException($"{path}: label {classes - 1} but only {names.Count} class names");
            ClassNames = names ?? Enumerable.Range(0, classes).Select(c => c.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToList();
            txn.Commit();   // keeps the database handle open for later transactions
        }
        catch (LightningException e)
        {
            Dispose();
            throw new InvalidDataException($"{path}: not a readable LMDB ({e.Message})", e);
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    private readonly string _path;

    /// <summary>The key of record i: its index in ASCII decimal, as folder2lmdb.py writes it.</summary>
    public static byte[] RecordKey(int index) => Encoding.ASCII.GetBytes(index.ToString(System.Globalization.CultureInfo.InvariantCulture));

    public int Count => _keys.Length;
    public IReadOnlyList<string> ClassNames { get; }
    public int Channels => 3;
    public int Label(int index) => _labels[index];
    public string ItemName(int index) => $"{_path}#{Encoding.ASCII.GetString(_keys[index])}";

    public DecodedImage Load(int index)
    {
        string name = ItemName(index);
        using var txn = _env.BeginTransaction(TransactionBeginFlags.ReadOnly);
        var (rc, _, value) = txn.Get(_db, _keys[index]);
        if (rc != MDBResultCode.Success) throw new InvalidDataException($"{name}: key missing from the LMDB ({rc})");
        var bytes = value.AsSpan();
        var record = ImageRecordPickle.Parse(bytes, name);
        // Decoded straight from the mapped pages: the transaction keeps them valid until here.
        return ImageDecoder.Decode(bytes.Slice(record.ImageOffset, record.ImageLength), name);
    }

    public void Dispose()
    {
        Close();
        GC.SuppressFinalize(this);
    }

    ~LmdbImageDataset() => Close();

    int _closed;

    void Close()
    {
        if (Interlocked.Exchange(ref _closed, 1) != 0) return;
        try
        {
            _db?.Dispose();
            _env.Dispose();
        }
        catch (Exception)
        {
            // Closing a read-only map cannot lose data; it must never take the process down.
        }
    }

    int[]? ReadLabels(LightningTransaction txn, int count)
    {
        if (!TryReadPickled(txn, LabelsKey, out var value)) return null;
        if (value is not byte[] raw || raw.Length != 4 * count)
            throw new InvalidDataException($"{_path}: {LabelsKey} is not {count} int32 labels");
        var labels = new int[count];
        for (int i = 0; i < count; i++) labels[i] = BinaryPrimitives.ReadInt32LittleEndian(raw.AsSpan(4 * i));
        return labels;
    }

    int[] ScanLabels(LightningTransaction txn)
    {
        var labels = new int[_keys.Length];
        for (int i = 0; i < _keys.Length; i++)
        {
            var (rc, _, value) = txn.Get(_db, _keys[i]);
            if (rc != MDBResultCode.Success) throw new InvalidDataException($"{ItemName(i)}: key missing from the LMDB ({rc})");
            labels[i] = ImageRecordPickle.Parse(value.AsSpan(), ItemName(i)).Label;
        }
        return labels;
    }

    int? ReadInt(LightningTransaction txn, string key)
    {
        if (!TryReadPickled(txn, key, out var value)) return null;
        return value switch
        {
            int i => i,
            long l => checked((int)l),
            _ => throw new InvalidDataException($"{_path}: {key} is {value?.GetType().Name ?? "None"}, not an int"),
        };
    }

    IReadOnlyList<object?>? ReadList(LightningTransaction txn, string key)
    {
        if (!TryReadPickled(txn, key, out var value)) return null;
        return value as IReadOnlyList<object?> ?? throw new InvalidDataException($"{_path}: {key} is not a list");
    }

    /// <summary>The unpickled value of a metadata key; false when the key is absent.</summary>
    bool TryReadPickled(LightningTransaction txn, string key, out object? value)
    {
        var (rc, _, bytes) = txn.Get(_db, Encoding.ASCII.GetBytes(key));
        value = rc == MDBResultCode.Success ? Unpickle(bytes.AsSpan().ToArray(), key) : null;
        return rc == MDBResultCode.Success;
    }

    object? Unpickle(byte[] data, string key)
    {
        try { return new RestrictedUnpickler(data, $"{_path}#{key}", new PlainDataOnly()).Load(); }
        catch (Exception e) when (e is not InvalidDataException) { throw new InvalidDataException($"{_path}: {key} does not unpickle: {e.Message}", e); }
    }

    /// <summary>Metadata pickles hold ints, bytes, strings and lists only: no class is ever constructed.</summary>
    sealed class PlainDataOnly : IPickleHost
    {
        public object Global(string module, string name) => throw new InvalidDataException($"unexpected {module}.{name} in LMDB metadata");
        public object PersistentLoad(object? pid) => throw new InvalidDataException("unexpected persistent id in LMDB metadata");
        public object? Reduce(object? callable, object?[] args) => throw new InvalidDataException("unexpected call in LMDB metadata");
        public object? NewObj(object? cls, object?[] args) => throw new InvalidDataException("unexpected object in LMDB metadata");
        public object? Build(object? obj, object? state) => throw new InvalidDataException("unexpected object state in LMDB metadata");
    }
}
