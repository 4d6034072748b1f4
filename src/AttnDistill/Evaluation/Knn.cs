using AttnDistill.Tensors;
using TorchSharp;
using static TorchSharp.torch;

namespace AttnDistill.Evaluation;

/// <summary>
/// DINO's weighted k-NN classifier (eval_knn.py, knn_classifier): train features are the bank,
/// every test feature takes its k most cosine-similar bank rows, each votes for its label with
/// weight exp(sim / T), and the classes are ranked by their summed votes.
/// <para>
/// Test rows are processed in chunks, so only a [chunk, N] similarity block and a
/// [chunk x k, classes] one-hot block exist at a time (ImageNet-sized banks fit). The top-k is
/// taken once with the largest k and its sorted prefixes serve the smaller ones (the same
/// neighbours as separate runs, since the top-k is sorted). Classes with equal votes are ranked
/// by a stable sort (lower class index first), which is what PyTorch's CPU sort does for DINO.
/// </para>
/// </summary>
public static class Knn
{
    public static readonly IReadOnlyList<int> DefaultKs = new[] { 10, 20, 100, 200 };
    public const double DefaultTemperature = 0.07;
    /// <summary>The fewest test rows per similarity block when the size is chosen automatically.</summary>
    public const int DefaultChunkSize = 256;

    /// <summary>
    /// Test rows per block for a bank of <paramref name="bankSize"/> rows: a [chunk, N] block of about
    /// 64M floats (256 MB), at least 256 rows. Larger blocks make larger products: on a 50,000-row
    /// bank (CIFAR-10) about 1,300 rows ran the matmul part 7 % and the whole vote 8 % faster than
    /// 256 (docs/RESULTS.md, Performance); ImageNet's 1.28M rows stay at 256.
    /// </summary>
    public static int ChunkFor(long bankSize) => (int)Math.Clamp((1L << 26) / Math.Max(1, bankSize), DefaultChunkSize, 8192);

    /// <param name="trainFeatures">[N, D] bank (any norm: rows are L2-normalized here).</param>
    /// <param name="trainLabels">[N] int64 class indices.</param>
    /// <param name="testFeatures">[M, D].</param>
    /// <param name="testLabels">[M] int64.</param>
    /// <param name="numClasses">Number of classes (labels are in [0, numClasses)).</param>
    /// <param name="ks">Neighbour counts; each must be in [1, N]. Default {10, 20, 100, 200}.</param>
    /// <param name="temperature">T in exp(sim / T).</param>
    /// <param name="chunkSize">Test rows per similarity block; 0: <see cref="ChunkFor"/> the bank size.</param>
    /// <returns>One result per k, in the order of <paramref name="ks"/>, in percent.</returns>
    public static IReadOnlyList<KnnResult> Classify(
        Tensor trainFeatures, Tensor trainLabels, Tensor testFeatures, Tensor testLabels, int numClasses,
        IReadOnlyList<int>? ks = null, double temperature = DefaultTemperature, int chunkSize = 0)
    {
        ks ??= DefaultKs;
        Validate(trainFeatures, trainLabels, testFeatures, testLabels, numClasses, ks, temperature, chunkSize);
        if (chunkSize == 0) chunkSize = ChunkFor(trainFeatures.shape[0]);
        int maxK = ks.Max();
        long m = testFeatures.shape[0];
        var top1 = new long[ks.Count];
        var top5 = new long[ks.Count];

        using var noGrad = torch.no_grad();
        using var outer = NewDisposeScope();
        var bank = nn.functional.normalize(trainFeatures.detach(), p: 2, dim: 1).t();   // (D, N)
        var labels = trainLabels.to(ScalarType.Int64, bank.device);
        var queries = nn.functional.normalize(testFeatures.detach().to(bank.device), p: 2, dim: 1);
        var targets = testLabels.to(ScalarType.Int64, bank.device);

        for (long start = 0; start < m; start += chunkSize)
        {
            using var scope = NewDisposeScope();
            long b = Math.Min(chunkSize, m - start);
            var feats = queries.narrow(0, start, b);                                     // (b, D)
            var target = targets.narrow(0, start, b).view(-1, 1);                        // (b, 1)
            var similarity = feats.mm(bank);                                             // (b, N)
            var (simMax, idxMax) = similarity.topk(maxK, dim: 1, largest: true, sorted: true); // (b, maxK)
            var neighboursMax = labels.index_select(0, idxMax.view(-1)).view(b, maxK);   // (b, maxK)

            for (int i = 0; i < ks.Count; i++)
            {
                int k = ks[i];
                var neighbours = neighboursMax.narrow(1, 0, k);                          // (b, k)
                var oneHot = zeros(b * k, numClasses, dtype: simMax.dtype, device: bank.device)
                    .scatter_(1, neighbours.reshape(-1, 1), ones(b * k, 1, dtype: simMax.dtype, device: bank.device)); // (b*k, C)
                var weights = simMax.narrow(1, 0, k).DividedBy(temperature).exp_();            // (b, k)
                var votes = oneHot.view(b, k, numClasses).mul(weights.view(b, k, 1)).sum(1); // (b, C)
                var (_, ranked) = votes.sort(dim: 1, descending: true, stable: true);    // (b, C)
                var correct = ranked.eq(target);                                         // (b, C)
                top1[i] += correct.narrow(1, 0, 1).sum().item<long>();
                int five = Math.Min(Math.Min(5, k), numClasses);
                top5[i] += correct.narrow(1, 0, five).sum().item<long>();
            }
        }
        return ks.Select((k, i) => new KnnResult(k, top1[i] * 100.0 / m, top5[i] * 100.0 / m)).ToArray();
    }

    static void Validate(Tensor trainFeatures, Tensor trainLabels, Tensor testFeatures, Tensor testLabels,
        int numClasses, IReadOnlyList<int> ks, double temperature, int chunkSize)
    {
        if (trainFeatures.dim() != 2 || testFeatures.dim() != 2)
            throw new ArgumentException($"features must be [N, D]; got train {Shape(trainFeatures)}, test {Shape(testFeatures)}.");
        if (trainFeatures.shape[1] != testFeatures.shape[1])
            throw new ArgumentException($"train and test feature widths differ: {trainFeatures.shape[1]} vs {testFeatures.shape[1]}.");
        if (trainLabels.dim() != 1 || trainLabels.shape[0] != trainFeatures.shape[0])
            throw new ArgumentException($"train labels {Shape(trainLabels)} do not match {trainFeatures.shape[0]} train features.");
        if (testLabels.dim() != 1 || testLabels.shape[0] != testFeatures.shape[0])
            throw new ArgumentException($"test labels {Shape(testLabels)} do not match {testFeatures.shape[0]} test features.");
        if (testFeatures.shape[0] == 0) throw new ArgumentException("no test features.");
        if (numClasses <= 0) throw new ArgumentException($"number of classes must be positive, got {numClasses}.");
        if (ks.Count == 0) throw new ArgumentException("no k given.");
        foreach (int k in ks)
            if (k < 1 || k > trainFeatures.shape[0])
                throw new ArgumentException($"k = {k} must be in [1, {trainFeatures.shape[0]}] (the bank size).");
        if (!(temperature > 0)) throw new ArgumentException($"temperature must be positive, got {temperature}.");
        if (chunkSize < 0) throw new ArgumentException($"chunk size must be positive (or 0: automatic), got {chunkSize}.");
    }

    static string Shape(Tensor t) => "[" + string.Join(", ", t.shape) + "]";
}
