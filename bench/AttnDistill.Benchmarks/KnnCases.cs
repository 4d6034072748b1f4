using AttnDistill.Evaluation;
using static TorchSharp.torch;

namespace AttnDistill.Benchmarks;

/// <summary>
/// k-NN evaluation (workload 4): DINO's weighted vote (<see cref="Knn.Classify"/>) over a random
/// bank, and, as its matmul part, the same chunked similarity products alone. Full minus matmul
/// is what the top-k and the vote add.
/// </summary>
public static class KnnCases
{
    public static IReadOnlyList<BenchCase> Create(BenchShapes shapes, IReadOnlyList<int> chunkSizes, long seed = 0)
    {
        var generator = new Generator((ulong)seed);
        var bank = randn(new long[] { shapes.KnnBank, shapes.KnnDim }, generator: generator);
        var bankLabels = randint(shapes.KnnClasses, new long[] { shapes.KnnBank }, generator: generator);
        var queries = randn(new long[] { shapes.KnnQueries, shapes.KnnDim }, generator: generator);
        var queryLabels = randint(shapes.KnnClasses, new long[] { shapes.KnnQueries }, generator: generator);
        double flops = FlopCount.KnnSimilarity(shapes.KnnBank, shapes.KnnQueries, shapes.KnnDim);
        var ks = new[] { shapes.KnnK };
        var cases = new List<BenchCase>();
        foreach (int chunk in chunkSizes)
        {
            string suffix = chunk == 0 ? "" : $"-chunk{chunk}";   // 0: Knn's automatic block size
            // The first case owns the shared tensors.
            Action? dispose = cases.Count == 0 ? () => { bank.Dispose(); bankLabels.Dispose(); queries.Dispose(); queryLabels.Dispose(); } : null;
            cases.Add(new BenchCase("knn", "full" + suffix, flops, shapes.KnnQueries,
                () => Knn.Classify(bank, bankLabels, queries, queryLabels, shapes.KnnClasses, ks, chunkSize: chunk), dispose));
            cases.Add(new BenchCase("knn", "matmul" + suffix, flops, shapes.KnnQueries, () => SimilarityOnly(bank, queries, chunk)));
        }
        return cases;
    }

    /// <summary>Knn.Classify's normalization and chunked similarity products, without top-k and vote.</summary>
    static void SimilarityOnly(Tensor trainFeatures, Tensor testFeatures, int chunkSize)
    {
        using var noGrad = no_grad();
        using var outer = NewDisposeScope();
        var bankT = nn.functional.normalize(trainFeatures, p: 2, dim: 1).t();            // (D, N)
        var q = nn.functional.normalize(testFeatures, p: 2, dim: 1);
        long m = q.shape[0];
        if (chunkSize == 0) chunkSize = Knn.ChunkFor(trainFeatures.shape[0]);
        for (long start = 0; start < m; start += chunkSize)
        {
            using var scope = NewDisposeScope();
            var sim = q.narrow(0, start, Math.Min(chunkSize, m - start)).mm(bankT);     // (b, N)
        }
    }
}
