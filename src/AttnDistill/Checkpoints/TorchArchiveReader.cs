using System.Collections;
using System.IO.Compression;
using System.Text;
using static TorchSharp.torch;

namespace AttnDistill.Checkpoints;

/// <summary>
/// Reads a torch.save zip archive (<c>name/data.pkl</c> + <c>name/data/&lt;key&gt;</c> storages) as an
/// untrusted file: the pickle runs in a <see cref="RestrictedUnpickler"/> that builds only tensors,
/// plain containers and the records of <see cref="PickleAllowList"/>; a pickle naming any other
/// global is refused with nothing executed. Every size is checked before memory is taken for it:
/// a storage must fit in its archive entry, an entry cannot inflate beyond what deflate can do
/// from its compressed size (which must fit in the file), and a tensor must lie inside its
/// storage; every entry read is checked against its CRC-32. Views sharing a storage (slices at an
/// offset, transposes, tied weights) are read as PyTorch reads them. Any damage ends in a <see cref="CheckpointFormatException"/> naming the file.
/// </summary>
public static class TorchArchiveReader
{
    /// <summary>Deflate cannot shrink data by more than about 1032:1; a larger declared ratio is corrupt (or a zip bomb).</summary>
    const long MaxInflateRatio = 1100;
    const long MaxPickleBytes = 1L << 30;
    const int MaxDims = 64;

    /// <summary>
    /// The inflate budget (<c>--max-checkpoint-inflate</c>): the archive's entries together may
    /// expand to at most this many bytes, or to the file's own size when it is 0 (the default).
    /// torch.save stores every entry uncompressed, so a genuine checkpoint never needs more than
    /// its size; a compressed one (re-zipped, or a zip bomb) is refused before anything is inflated.
    /// </summary>
    public static long MaxInflateBytes { get; set; }

    /// <summary>The default budget in multiples of the file's size.</summary>
    public const long DefaultInflateFactor = 16;

    /// <summary>
    /// The object torch.save wrote (usually a dict). Tensors are on the CPU and owned by the caller;
    /// on failure every tensor made so far is disposed.
    /// </summary>
    public static object? Load(string path)
    {
        CheckpointFileCheck.Require(path);
        long fileLength = new FileInfo(path).Length;
        Host? host = null;
        try
        {
            using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
            using var zip = new ZipArchive(fs, ZipArchiveMode.Read);
            var entries = new Dictionary<string, ZipArchiveEntry>(StringComparer.Ordinal);
            foreach (var e in zip.Entries) entries.TryAdd(e.FullName, e);
            CheckInflateBudget(entries.Values, path, fileLength);
            var (pkl, prefix) = FindPickle(entries, path);
            if (entries.TryGetValue(prefix + "byteorder", out var order) && Encoding.ASCII.GetString(ReadEntry(order, path, fileLength, 16)).Trim() != "little")
                throw new CheckpointFormatException($"{path}: saved on a big-endian machine; only little-endian archives are read.");
            byte[] pickle = ReadEntry(pkl, path, fileLength, MaxPickleBytes);
            host = new Host(entries, prefix, path, fileLength);
            var root = new RestrictedUnpickler(pickle, path, host).Load();
            host.ReleaseStorages();
            return root;
        }
        catch (Exception ex)
        {
            host?.DisposeEverything();
            if (ex is CheckpointFormatException or FileNotFoundException or OutOfMemoryException) throw;
            throw ex switch
            {
                EndOfStreamException => new CheckpointFormatException($"{path}: the file ended early (truncated?): {ex.Message}", ex),
                InvalidDataException => new CheckpointFormatException($"{path}: not a complete zip archive (truncated or corrupt download?): {ex.Message}", ex),
                IOException or UnauthorizedAccessException => new CheckpointFormatException($"{path}: cannot be read: {ex.Message}", ex),
                // A damaged archive can upset the zip reader in other ways; the file is what is wrong.
                _ => new CheckpointFormatException($"{path}: corrupt checkpoint ({ex.GetType().Name}: {ex.Message}).", ex),
            };
        }
    }

    static (ZipArchiveEntry Entry, string Prefix) FindPickle(Dictionary<string, ZipArchiveEntry> entries, string path)
    {
        var pickles = entries.Values.Where(e => e.FullName == "data.pkl" || (e.FullName.EndsWith("/data.pkl", StringComparison.Ordinal) && e.FullName.IndexOf('/') == e.FullName.Length - "/data.pkl".Length)).ToList();
        if (pickles.Count == 0)
        {
            bool script = entries.Values.Any(e => e.Name == "constants.pkl" || e.FullName.Contains("/code/", StringComparison.Ordinal));
            throw new CheckpointFormatException(script
                ? $"{path}: a TorchScript archive (torch.jit.save), not a state dict. In Python: torch.save(torch.jit.load(p).state_dict(), p2)."
                : $"{path}: a zip file without data.pkl: not a torch.save checkpoint.");
        }
        if (pickles.Count > 1) throw new CheckpointFormatException($"{path}: {pickles.Count} data.pkl entries: not a torch.save checkpoint.");
        var pkl = pickles[0];
        return (pkl, pkl.FullName[..^"data.pkl".Length]);
    }

    static void CheckInflateBudget(IEnumerable<ZipArchiveEntry> entries, string path, long fileLength)
    {
        long declared = 0, compressed = 0;
        foreach (var e in entries)
        {
            if (e.Length < 0 || e.CompressedLength < 0)
                throw new CheckpointFormatException($"{path}: archive entry '{e.FullName}' declares a negative size (corrupt).");
            CheckedLength(e, path, fileLength);   // an impossible ratio is named as such first
            declared = declared > long.MaxValue - e.Length ? long.MaxValue : declared + e.Length;
            if (e.Length != e.CompressedLength) compressed++;
        }
        // torch.save stores entries; our own writer deflates lightly (about 1.1:1): 16 x the file's size leaves room for both and refuses a 1000:1 bomb.
        long budget = MaxInflateBytes > 0 ? Math.Max(MaxInflateBytes, fileLength) : fileLength * DefaultInflateFactor;
        if (declared > budget)
            throw new CheckpointFormatException(
                $"{path}: its archive entries expand to {declared} bytes, more than the {budget}-byte budget ({(MaxInflateBytes > 0 ? "--max-checkpoint-inflate" : $"{DefaultInflateFactor} x the file's size")}; " +
                $"{compressed} entr{(compressed == 1 ? "y is" : "ies are")} compressed, which torch.save never does): a zip bomb, or re-save it with torch.save, " +
                "or raise --max-checkpoint-inflate BYTES if you trust the file.");
    }

    /// <summary>The entry's declared size, refused when the file cannot hold it.</summary>
    static long CheckedLength(ZipArchiveEntry e, string path, long fileLength)
    {
        long stored = e.CompressedLength, length = e.Length;
        if (stored < 0 || length < 0 || stored > fileLength)
            throw new CheckpointFormatException($"{path}: archive entry '{e.FullName}' claims {stored} stored bytes in a {fileLength}-byte file (corrupt).");
        if (length > stored * MaxInflateRatio + 4096)
            throw new CheckpointFormatException($"{path}: archive entry '{e.FullName}' claims to inflate {stored} bytes to {length} (corrupt, or a zip bomb).");
        return length;
    }

    static byte[] ReadEntry(ZipArchiveEntry e, string path, long fileLength, long limit)
    {
        long length = CheckedLength(e, path, fileLength);
        if (length > limit) throw new CheckpointFormatException($"{path}: archive entry '{e.FullName}' is {length} bytes, more than the {limit} allowed.");
        var bytes = new byte[length];
        using (var s = e.Open()) s.ReadExactly(bytes);
        CheckCrc(e, bytes, path);
        return bytes;
    }

    static void CheckCrc(ZipArchiveEntry e, ReadOnlySpan<byte> bytes, string path)
    {
        uint crc = Crc32.Compute(bytes);
        if (crc != e.Crc32)
            throw new CheckpointFormatException($"{path}: archive entry '{e.FullName}' fails its CRC-32 check (stored {e.Crc32:x8}, computed {crc:x8}): the file is corrupt.");
    }

    /// <summary>A storage named by a persistent id, not read until a tensor uses it.</summary>
    sealed record StorageRef(string Key, ScalarType Dtype, long Elements, long Bytes, ZipArchiveEntry Entry);

    /// <summary>Builds what the allowed globals stand for; refuses everything else.</summary>
    sealed class Host(Dictionary<string, ZipArchiveEntry> entries, string prefix, string path, long fileLength) : IPickleHost
    {
        private readonly Dictionary<string, Tensor> _storages = new(StringComparer.Ordinal);
        private readonly List<Tensor> _made = new();
        // Bytes that copies of views may take: at most what the archive's storages can really hold
        // (declared sizes are capped by what their compressed bytes in this file can inflate to).
        private long _copyBudget = Math.Min(fileLength * MaxInflateRatio,
            entries.Where(kv => kv.Key.StartsWith(prefix + "data/", StringComparison.Ordinal))
                .Sum(kv => Math.Min(Math.Max(0, kv.Value.Length), Math.Clamp(kv.Value.CompressedLength, 0, fileLength) * MaxInflateRatio + 4096))) + (1 << 20);

        public object Global(string module, string name) => PickleAllowList.Find(module, name) ?? throw Refused(module, name);

        private CheckpointFormatException Refused(string module, string name)
        {
            bool looksLikeModel = module.StartsWith("torch.nn", StringComparison.Ordinal) || module.StartsWith("timm", StringComparison.Ordinal)
                || module.StartsWith("models", StringComparison.Ordinal) || module.StartsWith("vision_transformer", StringComparison.Ordinal);
            return new CheckpointFormatException(
                $"{path}: refused: the pickle names the Python global '{module}.{name}', which a checkpoint of tensors does not need; " +
                "nothing in the file was run. Only tensors, numbers, strings, containers and argparse/numpy records are read." +
                (looksLikeModel ? " It looks like a whole pickled model (torch.save(model)): re-save its weights with torch.save(model.state_dict(), p)." : ""));
        }

        private CheckpointFormatException Bad(string what) => new($"{path}: corrupt checkpoint: {what}.");

        public object PersistentLoad(object? pid)
        {
            if (pid is not object?[] { Length: >= 5 } t || t[0] is not "storage")
                throw Bad("a persistent id that is not a ('storage', type, key, location, size) tuple");
            if (t[1] is not PickleGlobal { Kind: PickleGlobalKind.Storage } type) throw Bad($"storage type {RestrictedUnpickler.TypeName(t[1])}");
            if (t[2] is not string key) throw Bad("a storage key that is not a string");
            long elements = ToLong(t[4], "storage size");
            if (!entries.TryGetValue(prefix + "data/" + key, out var entry)) throw Bad($"storage '{key}' has no entry data/{key} in the archive");
            long elementSize = ElementSize(type.Dtype);
            long bytes = elements > long.MaxValue / elementSize ? long.MaxValue : elements * elementSize;
            long available = CheckedLength(entry, path, fileLength);
            if (bytes > available)
                throw new CheckpointFormatException($"{path}: storage '{key}' declares {elements} x {elementSize} bytes but its archive entry holds {available} (truncated or corrupt).");
            return new StorageRef(key, type.Dtype, elements, bytes, entry);
        }

        public object? Reduce(object? callable, object?[] args)
        {
            if (callable is not PickleGlobal g) throw Bad($"a call of a {RestrictedUnpickler.TypeName(callable)}");
            switch (g.Kind)
            {
                case PickleGlobalKind.RebuildTensor:
                    if (args.Length < 4) throw Bad($"{g} with {args.Length} arguments");
                    return Rebuild(args[0], args[1], args[2], args[3], dtype: null);
                case PickleGlobalKind.RebuildTensorV3:
                    if (args.Length < 7 || args[6] is not PickleGlobal { Kind: PickleGlobalKind.TorchDtype } dt) throw Bad($"{g} without a dtype");
                    return Rebuild(args[0], args[1], args[2], args[3], dt.Dtype);
                case PickleGlobalKind.RebuildParameter:
                    return args.Length >= 1 && args[0] is Tensor p ? p : throw Bad($"{g} without a tensor");
                case PickleGlobalKind.RebuildFromType:
                    if (args.Length < 3 || args[0] is not PickleGlobal { Kind: PickleGlobalKind.RebuildTensor or PickleGlobalKind.RebuildTensorV3 or PickleGlobalKind.RebuildParameter } f
                        || args[1] is not PickleGlobal { Kind: PickleGlobalKind.TensorType } || args[2] is not object?[] inner)
                        throw Bad($"{g} of something other than a tensor");
                    return Reduce(f, inner);
                case PickleGlobalKind.OrderedDict:
                {
                    var d = new Hashtable();
                    if (args.Length >= 1 && args[0] is IEnumerable pairs and not string)
                        foreach (var pair in pairs)
                        {
                            if (pair is not IList { Count: 2 } kv || kv[0] is null) throw Bad("an OrderedDict item that is not a (key, value) pair");
                            d[kv[0]!] = kv[1];
                        }
                    return d;
                }
                case PickleGlobalKind.Set:
                    return args.Length >= 1 && args[0] is IEnumerable items and not string ? new HashSet<object?>(items.Cast<object?>()) : new HashSet<object?>();
                case PickleGlobalKind.ByteArray:
                    return args.Length switch
                    {
                        0 => Array.Empty<byte>(),
                        _ when args[0] is byte[] b => b,
                        _ when args[0] is string s => Encode(s, args.Length > 1 ? args[1] as string : "latin1"),
                        _ => throw Bad($"{g} of a {RestrictedUnpickler.TypeName(args[0])}"),
                    };
                case PickleGlobalKind.CodecsEncode:
                    return args.Length >= 1 && args[0] is string text ? Encode(text, args.Length > 1 ? args[1] as string : "utf-8") : throw Bad($"{g} of a non-string");
                case PickleGlobalKind.TorchSize:
                    return args.Length >= 1 && args[0] is IList dims ? dims.Cast<object?>().ToArray() : throw Bad($"{g} without dimensions");
                case PickleGlobalKind.Namespace:
                    return new PythonNamespace();
                case PickleGlobalKind.Opaque:
                    return new OpaquePythonObject(g.FullName, args);
                default:
                    throw Bad($"{g} called as a function");
            }
        }

        private byte[] Encode(string s, string? encoding) => encoding?.ToLowerInvariant() switch
        {
            "latin1" or "latin-1" or "iso-8859-1" => Encoding.Latin1.GetBytes(s),
            "utf-8" or "utf8" or null => Encoding.UTF8.GetBytes(s),
            "ascii" => Encoding.ASCII.GetBytes(s),
            _ => throw Bad($"encoding '{encoding}'"),
        };

        public object? NewObj(object? cls, object?[] args) => cls switch
        {
            PickleGlobal { Kind: PickleGlobalKind.Namespace } => new PythonNamespace(),
            PickleGlobal { Kind: PickleGlobalKind.OrderedDict } => new Hashtable(),
            PickleGlobal { Kind: PickleGlobalKind.Set } => new HashSet<object?>(),
            PickleGlobal { Kind: PickleGlobalKind.Opaque } g => new OpaquePythonObject(g.FullName, args),
            _ => throw Bad($"an instance of {RestrictedUnpickler.TypeName(cls)} {cls}"),
        };

        public object? Build(object? obj, object? state)
        {
            switch (obj)
            {
                case PythonNamespace ns:
                    // state is the instance dict, or (dict, slots dict).
                    foreach (var part in state is object?[] tuple ? tuple : new[] { state })
                        if (part is Hashtable d)
                            foreach (DictionaryEntry e in d) ns[e.Key] = e.Value;
                    return ns;
                case OpaquePythonObject o:
                    o.State = state;
                    return o;
                case Hashtable or Tensor:
                    // OrderedDict attributes (state_dict()._metadata) and tensor attributes carry no weights.
                    return obj;
                default:
                    throw Bad($"state set on a {RestrictedUnpickler.TypeName(obj)}");
            }
        }

        private Tensor Rebuild(object? storageArg, object? offsetArg, object? sizeArg, object? strideArg, ScalarType? dtype)
        {
            if (storageArg is not StorageRef r) throw Bad($"a tensor over a {RestrictedUnpickler.TypeName(storageArg)}, not a storage");
            long offset = ToLong(offsetArg, "storage offset");
            long[] size = ToLongs(sizeArg, "size"), stride = ToLongs(strideArg, "stride");
            if (size.Length != stride.Length) throw Bad($"a tensor with {size.Length} sizes but {stride.Length} strides");
            var elementType = dtype ?? r.Dtype;
            // _rebuild_tensor_v3 reads an untyped (byte) storage as its dtype.
            var storage = Storage(r, elementType);
            long storageElements = storage.NumberOfElements;
            long numel = 1, last = offset;
            try
            {
                for (int i = 0; i < size.Length; i++)
                {
                    numel = checked(numel * size[i]);
                    if (size[i] > 0) last = checked(last + (size[i] - 1) * stride[i]);
                }
            }
            catch (OverflowException) { throw Bad($"tensor size [{string.Join(", ", size)}] overflows"); }
            if (numel > 0 && last >= storageElements)
                throw Bad($"a tensor of size [{string.Join(", ", size)}], strides [{string.Join(", ", stride)}] at offset {offset} reaches element {last} of storage '{r.Key}', which has {storageElements}");
            if (numel > storageElements)
                throw Bad($"a tensor of {numel} elements over storage '{r.Key}' of {storageElements} (an expanded view; not supported)");

            var view = storage.as_strided(size, stride, offset);
            if (offset == 0 && numel == storageElements && view.is_contiguous())
            {
                _made.Add(view);
                return view;   // the whole storage: shared like PyTorch does (tied weights stay tied)
            }
            long bytes = numel * ElementSize(elementType);
            if (bytes > _copyBudget) throw Bad("more tensor copies than the archive holds data for");
            _copyBudget -= bytes;
            var copy = view.is_contiguous() ? view.clone() : view.contiguous();
            view.Dispose();
            _made.Add(copy);
            return copy;
        }

        private Tensor Storage(StorageRef r, ScalarType dtype)
        {
            string cacheKey = r.Key + "\n" + dtype;
            if (_storages.TryGetValue(cacheKey, out var cached))
            {
                if (cached.NumberOfElements * ElementSize(dtype) != r.Bytes) throw Bad($"storage '{r.Key}' declared twice with different sizes");
                return cached;
            }
            long es = ElementSize(dtype);
            if (r.Bytes % es != 0) throw Bad($"storage '{r.Key}' of {r.Bytes} bytes read as {dtype}");
            if (r.Bytes > int.MaxValue) throw new CheckpointFormatException($"{path}: storage '{r.Key}' is {r.Bytes} bytes; storages over 2 GiB are not read.");
            var t = empty(new[] { r.Bytes / es }, dtype);
            _storages[cacheKey] = t;
            if (r.Bytes > 0)
            {
                using (var s = r.Entry.Open()) s.ReadExactly(t.bytes);
                if (r.Entry.Length == r.Bytes) CheckCrc(r.Entry, t.bytes, path);
            }
            return t;
        }

        private long ToLong(object? o, string what) => o switch
        {
            int i when i >= 0 => i,
            long l when l >= 0 => l,
            _ => throw Bad($"{what} {o ?? "None"} is not a non-negative integer"),
        };

        private long[] ToLongs(object? o, string what)
        {
            if (o is not IList list) throw Bad($"tensor {what} is a {RestrictedUnpickler.TypeName(o)}, not a tuple");
            if (list.Count > MaxDims) throw Bad($"a tensor with {list.Count} dimensions");
            var r = new long[list.Count];
            for (int i = 0; i < r.Length; i++) r[i] = ToLong(list[i], what);
            return r;
        }

        /// <summary>Storages are only referenced by the tensors made from them now.</summary>
        public void ReleaseStorages()
        {
            foreach (var t in _storages.Values) t.Dispose();
            _storages.Clear();
        }

        public void DisposeEverything()
        {
            ReleaseStorages();
            foreach (var t in _made) t.Dispose();
            _made.Clear();
        }
    }

    static long ElementSize(ScalarType t) => t switch
    {
        ScalarType.Float64 or ScalarType.Int64 or ScalarType.ComplexFloat32 => 8,
        ScalarType.ComplexFloat64 => 16,
        ScalarType.Float32 or ScalarType.Int32 => 4,
        ScalarType.Float16 or ScalarType.BFloat16 or ScalarType.Int16 => 2,
        _ => 1,
    };
}
