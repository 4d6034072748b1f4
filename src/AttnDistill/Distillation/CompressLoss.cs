using AttnDistill.Tensors;
using TorchSharp;
using static TorchSharp.torch;

namespace AttnDistill.Distillation;

/// <summary>
/// The CompRess baseline ("CompRes KD" rows of Table 10; Abbasi Koohpayegani et al., NeurIPS 2020,
/// the one-queue variant): the student matches the teacher's similarity distribution over a memory
/// bank Q of past teacher features,
///   L = KL( softmax(cos(f_t, Q) / tau) || softmax(cos(f_s, Q) / tau) )  with batchmean,
/// and after each step the batch's L2-normalized teacher features replace the oldest rows of Q (FIFO).
/// </summary>
/// <remarks>
/// Both similarities use the same teacher queue, so the student feature must have the teacher's width
/// (the projector gives it). As in CompRess, the queue starts as uniform noise in [-s, s] with
/// s = 1 / sqrt(D / 3) (not normalized) and is replaced by real teacher features as training runs.
/// Its state (<see cref="Queue"/>, <see cref="Pointer"/>) belongs in checkpoints: restore it with
/// <see cref="LoadState"/> so a resumed run sees the same bank.
/// </remarks>
public sealed class CompressLoss : IDisposable
{
    public const int DefaultQueueSize = 4096;
    public const double DefaultTau = 0.04;

    Tensor _queue;

    /// <param name="featureDim">D, the teacher's feature width.</param>
    /// <param name="queueSize">K, rows of the memory bank (CompRess: 4096 .. 128k).</param>
    /// <param name="tau">Softmax temperature of the similarities.</param>
    /// <param name="seed">Seed of the random initial bank.</param>
    /// <param name="dtype">Element type of the bank (float32 by default).</param>
    /// <param name="device">Where the bank lives (CPU by default).</param>
    public CompressLoss(int featureDim, int queueSize = DefaultQueueSize, double tau = DefaultTau, long seed = 0,
        ScalarType dtype = ScalarType.Float32, Device? device = null)
    {
        if (featureDim <= 0) throw new ArgumentException($"CompRess feature width must be positive, got {featureDim}.");
        if (queueSize <= 0) throw new ArgumentException($"CompRess queue size must be positive, got {queueSize}: use e.g. 4096.");
        if (!(tau > 0) || !double.IsFinite(tau)) throw new ArgumentException($"CompRess temperature tau must be > 0, got {tau}: use e.g. 0.04.");
        FeatureDim = featureDim;
        QueueSize = queueSize;
        Tau = tau;
        double stdv = 1.0 / Math.Sqrt(featureDim / 3.0);
        using var gen = new Generator((ulong)seed);
        using var scope = NewDisposeScope();
        using (no_grad())
        {
            var u = rand(new long[] { queueSize, featureDim }, dtype: ScalarType.Float64, generator: gen);
            _queue = u.Times(2 * stdv).Minus(stdv).to(dtype, device ?? CPU).MoveToOuterDisposeScope();  // (K, D)
        }
    }

    public int FeatureDim { get; }
    public int QueueSize { get; }
    public double Tau { get; }

    /// <summary>The memory bank [K, D] (no gradient). Save it in checkpoints.</summary>
    public Tensor Queue => _queue;

    /// <summary>Row of the bank the next enqueued feature goes to (the oldest one). Save it in checkpoints.</summary>
    public long Pointer { get; private set; }

    /// <summary>
    /// The loss for one batch: student [B, D] (with gradient), teacher [B, D] (detached here).
    /// With <paramref name="update"/> the teacher batch is enqueued afterwards, as CompRess does in its forward.
    /// </summary>
    public Tensor Compute(Tensor studentFeature, Tensor teacherFeature, bool update = true)
    {
        if (studentFeature.dim() != 2 || !studentFeature.shape.SequenceEqual(teacherFeature.shape) || studentFeature.shape[1] != FeatureDim)
            throw new ArgumentException($"CompRess needs student and teacher features [B, {FeatureDim}]; got [{string.Join(", ", studentFeature.shape)}] and [{string.Join(", ", teacherFeature.shape)}].");

        using var scope = NewDisposeScope();
        var qS = nn.functional.normalize(studentFeature, p: 2.0, dim: 1);           // (B, D)
        var qT = nn.functional.normalize(teacherFeature.detach(), p: 2.0, dim: 1);  // (B, D)
        // A copy: the FIFO update below writes into the bank in place, which autograd must not see.
        var bank = _queue.detach().clone().to(qS.dtype, qS.device).t();              // (D, K)
        var logQS = qS.matmul(bank).DividedBy(Tau).log_softmax(1);                          // (B, K)
        var logPT = qT.matmul(bank).DividedBy(Tau).log_softmax(1);                          // (B, K)
        // KL(p_t || q_s), batchmean; log-probabilities on both sides keep tiny p_t finite.
        var loss = (logPT.exp() * (logPT - logQS)).sum().DividedBy(studentFeature.shape[0]);
        if (update) Enqueue(qT);
        return loss.MoveToOuterDisposeScope();
    }

    /// <summary>FIFO update: the L2-normalized teacher features [B, D] overwrite the B oldest rows (wrapping around).</summary>
    public void Enqueue(Tensor teacherFeature)
    {
        long b = teacherFeature.shape[0];
        if (teacherFeature.dim() != 2 || teacherFeature.shape[1] != FeatureDim)
            throw new ArgumentException($"enqueued features must be [B, {FeatureDim}], got [{string.Join(", ", teacherFeature.shape)}].");
        if (b > QueueSize)
            throw new ArgumentException($"batch {b} is larger than the CompRess queue {QueueSize}: use a queue of at least the batch size.");
        using var scope = NewDisposeScope();
        using (no_grad())
        {
            var q = nn.functional.normalize(teacherFeature.detach(), p: 2.0, dim: 1).to(_queue.dtype, _queue.device);
            using var size = QueueSize.ToScalar();
            var ids = KeptScalars.Arange(b, ScalarType.Int64, _queue.device).Plus((long)Pointer).remainder(size);
            _queue.index_copy_(0, ids, q);
        }
        Pointer = (Pointer + b) % QueueSize;
    }

    /// <summary>Restores a saved bank [K, D] and pointer (from a checkpoint).</summary>
    public void LoadState(Tensor queue, long pointer)
    {
        if (!queue.shape.SequenceEqual(new long[] { QueueSize, FeatureDim }))
            throw new ArgumentException($"saved CompRess queue is [{string.Join(", ", queue.shape)}], expected [{QueueSize}, {FeatureDim}]: use the queue size and teacher of the checkpoint.");
        if (pointer < 0 || pointer >= QueueSize)
            throw new ArgumentException($"saved CompRess pointer {pointer} is outside [0, {QueueSize}).");
        using (no_grad())
            _queue.copy_(queue);
        Pointer = pointer;
    }

    public void Dispose() => _queue.Dispose();
}
