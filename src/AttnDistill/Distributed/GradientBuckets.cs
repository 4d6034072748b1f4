using AttnDistill.Tensors;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace AttnDistill.Distributed;

/// <summary>
/// The gradients of a fixed list of parameters in one preallocated contiguous buffer, cut into
/// buckets of a few MB at parameter boundaries (as PyTorch's DDP), so that averaging them over
/// ranks is a handful of in-place all-reduces on native memory, with no per-step allocation.
/// <para>
/// After the first average, each parameter's <c>.grad</c> is a view into the buffer (DDP's
/// <c>gradient_as_bucket_view</c>): backward accumulates straight into it (libtorch adds into a
/// defined gradient in place), and TorchSharp's <c>zero_grad</c> zeroes it in place, so later
/// steps copy nothing. A gradient that is not such a view (the first step, or one replaced by
/// other code) is copied in and the view attached again.
/// </para>
/// <para>
/// One slot per parameter after the gradients counts the ranks that had a gradient for it this
/// step, reduced with them: a parameter no rank computed a gradient for keeps <c>grad == null</c>
/// (as in one process, the optimizer then skips it), while one that only some ranks computed
/// (e.g. a rank skipped a non-finite batch) gets the average over all ranks on every rank, so
/// every rank takes the same optimizer step.
/// </para>
/// </summary>
public sealed class GradientBuckets : IDisposable
{
    /// <summary>
    /// 25 MB, DDP's default: without overlap with backward every bucket is one more synchronization
    /// of all ranks, and on a busy machine 1-4 MB buckets measured slower than 25 MB or one bucket
    /// (docs/RESULTS.md, "Data-parallel (MPI)"). ATTNDISTILL_BUCKET_MB changes it.
    /// </summary>
    public const long DefaultBucketBytes = 25L << 20;

    private readonly Parameter[] _params;
    private readonly long[] _offsets;
    private readonly IntPtr[] _slotAddress;
    private readonly bool[] _attached;
    private readonly Tensor _flat;
    private readonly long _flagsOffset;

    public GradientBuckets(IReadOnlyList<Parameter> parameters, long bucketBytes = DefaultBucketBytes)
    {
        if (parameters.Count == 0) throw new ArgumentException("no parameter to average.", nameof(parameters));
        if (bucketBytes <= 0) throw new ArgumentOutOfRangeException(nameof(bucketBytes), "bucket size must be positive");
        _params = parameters.ToArray();
        var dtype = _params[0].dtype;
        var device = _params[0].device;
        if (!is_floating_point(_params[0]))
            throw new ArgumentException($"gradients must be floating point, got {dtype}.", nameof(parameters));
        foreach (var p in _params)
            if (p.dtype != dtype || p.device.ToString() != device.ToString())
                throw new NotSupportedException($"all averaged parameters must share one dtype and device ({dtype} on {device}); found {p.dtype} on {p.device}.");

        _offsets = new long[_params.Length + 1];
        for (int i = 0; i < _params.Length; i++) _offsets[i + 1] = _offsets[i] + _params[i].NumberOfElements;
        _flagsOffset = _offsets[^1];
        long total = _flagsOffset + _params.Length;                                   // gradients, then one flag per parameter
        using (NewDisposeScope())
            _flat = zeros(new[] { total }, dtype, device).DetachFromDisposeScope();

        // Buckets: consecutive parameters up to bucketBytes (a larger parameter gets its own); the flags ride in the last one.
        long elementBytes = _flat.ElementSize, cap = Math.Max(1, bucketBytes / elementBytes);
        var buckets = new List<(long Start, long Length)>();
        long start = 0;
        for (int i = 0; i < _params.Length; i++)
        {
            long end = _offsets[i + 1];
            if (end - start > cap && _offsets[i] > start)
            {
                buckets.Add((start, _offsets[i] - start));
                start = _offsets[i];
            }
        }
        buckets.Add((start, total - start));
        Buckets = buckets;

        _slotAddress = new IntPtr[_params.Length];
        for (int i = 0; i < _params.Length; i++)
            using (var s = Slot(i)) _slotAddress[i] = TensorMemory.Address(s);
        _attached = new bool[_params.Length];
    }

    /// <summary>(first element, element count) of each bucket in <see cref="Flat"/>.</summary>
    public IReadOnlyList<(long Start, long Length)> Buckets { get; }

    /// <summary>The whole buffer: every gradient, then the per-parameter flags.</summary>
    public Tensor Flat => _flat;

    /// <summary>Gradient elements (without flags).</summary>
    public long GradientElements => _flagsOffset;

    /// <summary>True when this buffer was built for exactly these parameter objects, in this order.</summary>
    public bool Matches(IReadOnlyList<Parameter> parameters)
    {
        if (parameters.Count != _params.Length) return false;
        for (int i = 0; i < _params.Length; i++)
            if (!ReferenceEquals(parameters[i], _params[i])) return false;
        return true;
    }

    /// <summary>
    /// Averages the gradients over <paramref name="worldSize"/> ranks: gathers them into the buffer,
    /// calls <paramref name="sumInPlace"/> once per bucket (an all-reduce that sums in place), scales
    /// by 1 / worldSize and leaves each parameter's grad as a view of its slot.
    /// </summary>
    public void Average(Action<Tensor> sumInPlace, int worldSize)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var flags = new float[_params.Length];
        for (int i = 0; i < _params.Length; i++)
        {
            var g = _params[i].grad;
            if (g is null)
            {
                // A detached or never-set gradient: this rank contributes zeros.
                if (_attached[i]) _attached[i] = false;
                Slot(i).zero_();
                continue;
            }
            flags[i] = 1;
            if (!IsSlot(g, i))
            {
                Slot(i).copy_(g.reshape(-1));
                _attached[i] = false;
            }
        }
        _flat.narrow(0, _flagsOffset, _params.Length).copy_(tensor(flags));
        foreach (var (start, length) in Buckets) sumInPlace(_flat.narrow(0, start, length));
        if (worldSize > 1)
        {
            using var inv = (1.0 / worldSize).ToScalar();   // held across the call (see Models/KeptScalars)
            _flat.mul_(inv);
        }
        var counts = _flat.narrow(0, _flagsOffset, _params.Length).cpu().data<float>().ToArray();
        for (int i = 0; i < _params.Length; i++)
        {
            if (counts[i] <= 0 || _attached[i]) continue;    // no rank had a gradient: keep grad null, as one process would
            _params[i].grad = Slot(i).view(_params[i].shape);
            _attached[i] = true;
        }
    }

    private Tensor Slot(int i) => _flat.narrow(0, _offsets[i], _offsets[i + 1] - _offsets[i]);

    private bool IsSlot(Tensor g, int i) =>
        g.NumberOfElements == _offsets[i + 1] - _offsets[i] && g.is_contiguous() && TensorMemory.Address(g) == _slotAddress[i];

    public void Dispose() => _flat.Dispose();
}
