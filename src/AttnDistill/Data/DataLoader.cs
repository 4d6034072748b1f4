using System.Collections.Concurrent;
using AttnDistill.Data.Transforms;
using static TorchSharp.torch;

namespace AttnDistill.Data;

/// <summary>
/// Batches of augmented images: samples are decoded and transformed on worker threads (plain C#
/// and SkiaSharp, no libtorch, so they do not compete with libtorch's own threads), a bounded
/// number of batches ahead; each batch becomes one contiguous float32 [B, C, S, S] tensor on the
/// consuming thread.
/// <para>
/// Determinism: the epoch order is <see cref="ShardedOrder"/> (seed + epoch), and sample i of
/// epoch e is augmented with its own generator seeded from (seed, e, i), so batches do not depend
/// on the number of workers or their timing, and resuming at a batch gives the same batches.
/// </para>
/// <para>
/// Unreadable files: an item that fails to decode is replaced by the next readable item of the
/// data set (index + 1, + 2, ... wrapping), so batches keep their size; the item is counted and
/// named once through <see cref="DataLoaderOptions.Log"/>, and never retried. Which items are
/// replaced depends only on the files, so this stays deterministic.
/// </para>
/// </summary>
/// <example>
/// <code>
/// foreach (var batch in loader.Epoch(epoch, startBatch))
/// {
///     using var scope = torch.NewDisposeScope();
///     var loss = Step(batch.Images, batch.Labels); // batch tensors are disposed by the loader
/// }
/// </code>
/// </example>
public sealed class DataLoader
{
    private readonly ConcurrentDictionary<int, string> _unreadable = new();
    private readonly object _logLock = new();
    private readonly int _side;
    private readonly PixelNormalizer _normalizer;

    /// <summary>
    /// Checks the set-up and decodes items from the start until one succeeds: a data set with no
    /// readable image throws <see cref="InvalidDataException"/> here, before any training.
    /// </summary>
    /// <param name="transform">Must end in a fixed square size (RandomResizedCrop or CenterCrop).</param>
    public DataLoader(IImageDataset dataset, IImageTransform transform, DataLoaderOptions options)
    {
        Dataset = dataset;
        Transform = transform;
        Options = options;
        if (options.BatchSize <= 0) throw new ArgumentOutOfRangeException(nameof(options), "BatchSize must be positive");
        if (options.Workers < 0 || options.Workers > MaxWorkers) throw new ArgumentException($"--workers must be between 0 and {MaxWorkers}, got {options.Workers}.");
        if (options.PrefetchBatches < 1) throw new ArgumentOutOfRangeException(nameof(options), "PrefetchBatches >= 1");
        if (options.WorldSize < 1 || options.Rank < 0 || options.Rank >= options.WorldSize)
            throw new ArgumentOutOfRangeException(nameof(options), $"rank {options.Rank} of world size {options.WorldSize}");
        if (transform.OutputSize is not { } size || size.Width != size.Height)
            throw new ArgumentException("the transform must end with a square fixed-size step (RandomResizedCrop or CenterCrop)", nameof(transform));
        _side = size.Width;
        if (options.Mean is not null && options.Mean.Count != dataset.Channels)
            throw new ArgumentException($"Mean has {options.Mean.Count} values, the data set has {dataset.Channels} channel(s)", nameof(options));
        _normalizer = new PixelNormalizer(dataset.Channels, options.Mean, options.Std);
        if (dataset.Count == 0) throw new InvalidDataException("the data set has no items");
        for (int i = 0; i < dataset.Count; i++)
            if (TryLoad(i, out _)) return;
        throw new InvalidDataException(
            $"no readable image among the {dataset.Count} items of the data set (first: {dataset.ItemName(0)}: {_unreadable.GetValueOrDefault(0)})");
    }

    /// <summary>Most worker threads: each holds a thread stack and a batch slot (100,000 exhaust the address space's mappings and abort natively).</summary>
    public const int MaxWorkers = 256;

    public IImageDataset Dataset { get; }
    public IImageTransform Transform { get; }
    public DataLoaderOptions Options { get; }

    /// <summary>Samples this rank sees per epoch (after sharding).</summary>
    public int SamplesPerEpoch => ShardLength(Dataset.Count);

    public int BatchesPerEpoch
    {
        get
        {
            int n = SamplesPerEpoch, b = Options.BatchSize;
            return Options.DropLast ? n / b : (n + b - 1) / b;
        }
    }

    /// <summary>Items found unreadable so far (each counted once over the loader's life).</summary>
    public int UnreadableCount => _unreadable.Count;

    /// <summary>Names of the unreadable items found so far, in index order.</summary>
    public IReadOnlyList<string> UnreadableItems => _unreadable.Keys.Order().Select(Dataset.ItemName).ToList();

    /// <summary>
    /// The batches of one epoch, from <paramref name="startBatch"/> on (to resume mid-epoch). Each
    /// batch is disposed when the next is requested or when the enumeration ends or is abandoned.
    /// </summary>
    public IEnumerable<DataBatch> Epoch(int epoch, int startBatch = 0, CancellationToken cancellation = default)
    {
        int batches = BatchesPerEpoch;
        if (startBatch < 0 || startBatch > batches)
            throw new ArgumentOutOfRangeException(nameof(startBatch), $"start batch {startBatch} not in [0, {batches}]");
        int[] order = ShardedOrder.ForEpoch(Dataset.Count, epoch, Options.Seed, Options.Shuffle, Options.Rank, Options.WorldSize, Options.ShardDropTail);
        return Run(order, epoch, startBatch, batches, cancellation);
    }

    private int ShardLength(int count)
    {
        int w = Options.WorldSize;
        return Options.ShardDropTail && count % w != 0 ? (int)Math.Ceiling((count - w) / (double)w) : (count + w - 1) / w;
    }

    private IEnumerable<DataBatch> Run(int[] order, int epoch, int startBatch, int batches, CancellationToken cancellation)
    {
        using var pipeline = new Pipeline(this, order, epoch, startBatch, batches, cancellation);
        DataBatch? current = null;
        try
        {
            for (int b = startBatch; b < batches; b++)
            {
                var slot = pipeline.Take(b);
                current?.Dispose();
                current = null;
                current = ToBatch(slot, epoch);
                pipeline.Recycle(slot);
                yield return current;
            }
        }
        finally
        {
            current?.Dispose();
        }
    }

    private static DataBatch ToBatch(Slot slot, int epoch)
    {
        // The workers wrote the images into slot.Images; the batch takes that tensor over.
        var images = slot.Images!;
        slot.Images = null;
        var labels = tensor(slot.Labels.AsSpan(0, slot.Count).ToArray(), dtype: ScalarType.Int64);
        labels.DetachFromDisposeScope(); // owned by the batch, whatever scope the caller has open
        return new DataBatch(epoch, slot.Batch, images, labels, slot.Used.AsSpan(0, slot.Count).ToArray());
    }

    /// <summary>Decodes, augments and stores sample <paramref name="pos"/> of a batch being filled.</summary>
    private void Fill(Slot slot, int pos, int epoch)
    {
        int index = slot.Requested[pos];
        int used = index;
        DecodedImage? image = null;
        for (int attempt = 0; attempt < Dataset.Count; attempt++)
        {
            used = (int)((index + (long)attempt) % Dataset.Count);
            if (TryLoad(used, out image)) break;
        }
        if (image is null) throw new InvalidDataException("no readable image left in the data set");
        var rng = new SampleRandom(Options.Seed, epoch, index, used);
        var output = Transform.Apply(image, rng);
        if (output.Width != _side || output.Height != _side || output.Channels != Dataset.Channels)
            throw new InvalidOperationException($"transform gave {output.Width}x{output.Height}x{output.Channels}, expected {_side}x{_side}x{Dataset.Channels}");
        int sampleFloats = output.Pixels.Length;
        unsafe
        {
            // Disjoint slices of the batch tensor's memory, one per sample: workers never overlap.
            var dst = new Span<float>((float*)slot.Data + (long)pos * sampleFloats, sampleFloats);
            _normalizer.WriteChw(output, dst);
        }
        slot.Labels[pos] = Dataset.Label(used);
        slot.Used[pos] = used;
    }

    private bool TryLoad(int index, out DecodedImage? image)
    {
        image = null;
        if (_unreadable.ContainsKey(index)) return false;
        try
        {
            image = Dataset.Load(index);
            return true;
        }
        catch (Exception e) when (e is (InvalidDataException or IOException or UnauthorizedAccessException) and not ImageTooLargeException)
        {
            if (_unreadable.TryAdd(index, e.Message) && Options.Log is { } log)
                lock (_logLock) log($"unreadable image skipped (replaced by the next readable one): {Dataset.ItemName(index)}: {e.Message}");
            return false;
        }
    }

    /// <summary>Buffers of one batch being filled by the workers.</summary>
    private sealed class Slot
    {
        public Slot(int batchSize)
        {
            Labels = new long[batchSize];
            Requested = new int[batchSize];
            Used = new int[batchSize];
        }

        /// <summary>float32 [Count, C, S, S], allocated when the batch is issued, handed to the DataBatch when done.</summary>
        public Tensor? Images { get; set; }

        /// <summary>Images' data pointer, written by the workers.</summary>
        public IntPtr Data { get; set; }
        public long[] Labels { get; }
        public int[] Requested { get; }
        public int[] Used { get; }
        public int Batch { get; set; }
        public int Count { get; set; }
        public int Remaining;
        public Exception? Error { get; set; }
        public ManualResetEventSlim Done { get; } = new();
    }

    /// <summary>One epoch's worker threads, job queue and batch slots.</summary>
    private sealed class Pipeline : IDisposable
    {
        private readonly DataLoader _loader;
        private readonly int[] _order;
        private readonly int _epoch;
        private readonly int _batches;
        private readonly CancellationToken _cancellation;
        private readonly BlockingCollection<(Slot Slot, int Pos)> _jobs = new();
        private readonly Queue<Slot> _inFlight = new();
        private readonly Stack<Slot> _free = new();
        private readonly Thread[] _workers;
        private volatile bool _stopping;
        private int _nextToIssue;

        public Pipeline(DataLoader loader, int[] order, int epoch, int startBatch, int batches, CancellationToken cancellation)
        {
            _loader = loader;
            _order = order;
            _epoch = epoch;
            _batches = batches;
            _cancellation = cancellation;
            _nextToIssue = startBatch;
            _workers = new Thread[loader.Options.Workers];
            for (int w = 0; w < _workers.Length; w++)
            {
                _workers[w] = new Thread(Work) { IsBackground = true, Name = $"attndistill-data-{w}" };
                _workers[w].Start();
            }
        }

        /// <summary>Waits for batch b (issuing the next ones first, so workers stay busy) and returns it filled.</summary>
        public Slot Take(int b)
        {
            if (_workers.Length == 0)
            {
                var inline = Issue(b, queue: false);
                _free.Push(inline); // so Dispose frees its tensor if filling throws
                for (int pos = 0; pos < inline.Count; pos++) _loader.Fill(inline, pos, _epoch);
                _free.Pop();
                return inline;
            }
            IssueAhead();
            var slot = _inFlight.Peek();
            if (slot.Batch != b) throw new InvalidOperationException($"pipeline out of order: expected batch {b}, got {slot.Batch}");
            slot.Done.Wait(_cancellation);
            _inFlight.Dequeue();
            if (slot.Error is { } error)
            {
                _free.Push(slot);
                // Over the decode budget: the one-line refusal naming the file, as PIL's error ends a PyTorch run.
                if (error is ImageTooLargeException bomb) throw new ImageTooLargeException(bomb.Message, bomb);
                throw new InvalidOperationException($"data worker failed on batch {b}: {error.Message}", error);
            }
            IssueAhead();
            return slot;
        }

        public void Recycle(Slot slot) => _free.Push(slot);

        public void Dispose()
        {
            _stopping = true;
            _jobs.CompleteAdding();
            foreach (var t in _workers) t.Join();
            _jobs.Dispose();
            // Batches prepared but never handed out (epoch abandoned early).
            foreach (var slot in _inFlight.Concat(_free))
            {
                slot.Images?.Dispose();
                slot.Done.Dispose();
            }
        }

        private void IssueAhead()
        {
            while (_nextToIssue < _batches && _inFlight.Count < _loader.Options.PrefetchBatches)
                _inFlight.Enqueue(Issue(_nextToIssue++, queue: true));
        }

        private Slot Issue(int b, bool queue)
        {
            int bs = _loader.Options.BatchSize;
            var slot = _free.Count > 0 ? _free.Pop() : new Slot(bs);
            int start = b * bs;
            slot.Batch = b;
            slot.Count = Math.Min(bs, _order.Length - start);
            int side = _loader._side;
            using (NewDisposeScope())
            {
                slot.Images = empty(new long[] { slot.Count, _loader.Dataset.Channels, side, side }, ScalarType.Float32); // (B, C, S, S)
                slot.Images.DetachFromDisposeScope();
            }
            unsafe
            {
                // Native memory of the fresh contiguous tensor: a stable address.
                slot.Data = (IntPtr)System.Runtime.CompilerServices.Unsafe.AsPointer(ref System.Runtime.InteropServices.MemoryMarshal.GetReference(slot.Images.bytes));
            }
            slot.Error = null;
            slot.Remaining = slot.Count;
            slot.Done.Reset();
            Array.Copy(_order, start, slot.Requested, 0, slot.Count);
            if (queue)
                for (int pos = 0; pos < slot.Count; pos++) _jobs.Add((slot, pos));
            return slot;
        }

        private void Work()
        {
            foreach (var (slot, pos) in _jobs.GetConsumingEnumerable())
            {
                if (!_stopping)
                {
                    try
                    {
                        _loader.Fill(slot, pos, _epoch);
                    }
                    catch (Exception e)
                    {
                        slot.Error ??= e;
                    }
                }
                if (Interlocked.Decrement(ref slot.Remaining) == 0) slot.Done.Set();
            }
        }
    }
}
