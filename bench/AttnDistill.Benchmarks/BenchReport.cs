namespace AttnDistill.Benchmarks;

/// <summary>One timed case with its share of the machine's matmul rate.</summary>
/// <param name="FractionOfFp32Matmul">Achieved FLOP/s over the fp32 matmul FLOP/s measured first in the same run.</param>
/// <param name="FractionOfBf16Matmul">The same over the bf16 matmul FLOP/s.</param>
/// <param name="FractionOfInterleavedFp32Matmul">Over an fp32 matmul timed in turn with this workload's variants (same load).</param>
/// <param name="BestFractionOfInterleavedFp32Matmul">Fastest run over the fastest interleaved matmul: the least disturbed pair on a busy machine.</param>
public sealed record BenchRow(BenchTiming Timing, double FractionOfFp32Matmul, double FractionOfBf16Matmul, double FractionOfInterleavedFp32Matmul,
    double BestFractionOfInterleavedFp32Matmul);

/// <summary>Peak resident memory of a training step against its analytic footprint.</summary>
/// <param name="BaselineBytes">Resident size before the models were built (runtime, libtorch).</param>
/// <param name="PeakBytes">Peak resident size over build + steps.</param>
/// <param name="PeakAfterBuildBytes">Peak after building the models, task and trainer, before any step.</param>
/// <param name="PeakAfterFirstStepBytes">Peak after the first step (AdamW's moments are allocated there).</param>
public sealed record MemoryResult(string Workload, string Variant, long BaselineBytes, long PeakBytes, long PeakAfterBuildBytes, long PeakAfterFirstStepBytes,
    MemoryEstimate Analytic, double Load)
{
    public long PeakAboveBaselineBytes => PeakBytes - BaselineBytes;
    public double RatioToAnalytic => (double)PeakAboveBaselineBytes / Analytic.Total;
}

/// <summary>Everything one `attndistill bench` run measured (written as JSON with --json).</summary>
public sealed record BenchReport
{
    public required string Date { get; init; }
    public required string Libtorch { get; init; }
    /// <summary>The C allocator behind libtorch's tensors (<see cref="NativeAllocator.Name"/>): it moves both step time and peak memory.</summary>
    public string Allocator { get; init; } = NativeAllocator.Name();
    public required int Threads { get; init; }
    public required int Cores { get; init; }
    public required string Command { get; init; }
    public required BenchTiming MatmulFp32 { get; init; }
    public required BenchTiming MatmulBf16 { get; init; }
    public required IReadOnlyList<BenchRow> Rows { get; init; }
    public IReadOnlyList<MemoryResult> Memory { get; init; } = Array.Empty<MemoryResult>();
    public IReadOnlyList<DataThroughputRow> Data { get; init; } = Array.Empty<DataThroughputRow>();
}
