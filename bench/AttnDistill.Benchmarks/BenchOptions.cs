namespace AttnDistill.Benchmarks;

/// <summary>What <see cref="BenchSuite"/> runs and how often.</summary>
public sealed record BenchOptions
{
    public static readonly IReadOnlyList<string> AllWorkloads = new[] { "distill-224", "distill-32", "mae-224", "knn", "features-224" };

    /// <summary>Workload ids to run (the matmul bar always runs first).</summary>
    public IReadOnlyList<string> Workloads { get; init; } = AllWorkloads;
    /// <summary>Untimed runs of every case before timing.</summary>
    public int Warmup { get; init; } = 1;
    /// <summary>Timed runs of every case (variants alternate).</summary>
    public int Repeats { get; init; } = 5;
    /// <summary>Timed runs of the matmul bar.</summary>
    public int MatmulRepeats { get; init; } = 10;
    /// <summary>Also time the lever variants (explicit attention, bf16 teacher only, inference_mode, k-NN chunk sizes).</summary>
    public bool Levers { get; init; } = true;
    /// <summary>Measure the peak resident memory of the first distillation workload.</summary>
    public bool Memory { get; init; } = true;
    /// <summary>Before each workload, wait until the 1-minute load average is below this...</summary>
    public double QuietLoad { get; init; } = 2.5;
    /// <summary>...but no longer than this.</summary>
    public TimeSpan MaxWait { get; init; } = TimeSpan.FromMinutes(10);
    public BenchShapes Shapes { get; init; } = BenchShapes.Paper;
    /// <summary>Folders (with train/) whose loader throughput is timed after the workloads.</summary>
    public IReadOnlyList<string> DataRoots { get; init; } = Array.Empty<string>();
    /// <summary>Loader thread counts for the data throughput (each timed).</summary>
    public IReadOnlyList<int> DataWorkers { get; init; } = new[] { 1, 2 };
    /// <summary>Time torchvision's DataLoader on the same folders and worker counts (when python3 with torchvision is there).</summary>
    public bool TorchvisionReference { get; init; } = true;
    public long Seed { get; init; }

    public BenchOptions Validate()
    {
        foreach (var w in Workloads)
            if (!AllWorkloads.Contains(w))
                throw new ArgumentException($"unknown workload '{w}': use {string.Join(", ", AllWorkloads)}.");
        if (Warmup < 0) throw new ArgumentException($"warm-up runs must be >= 0, got {Warmup}.");
        if (DataWorkers.Count == 0 || DataWorkers.Any(w => w < 1)) throw new ArgumentException($"--data-workers must be positive, got {string.Join(" ", DataWorkers)}.");
        if (Repeats <= 0 || MatmulRepeats <= 0) throw new ArgumentException($"repeats must be positive, got {Repeats} and {MatmulRepeats}.");
        return this;
    }
}
