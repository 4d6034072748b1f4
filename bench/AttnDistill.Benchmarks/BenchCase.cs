namespace AttnDistill.Benchmarks;

/// <summary>
/// One timed variant of a workload: <see cref="Run"/> does the work once (a training step, an
/// inference batch, a k-NN pass) and returns when its results are on the host. The FLOP count is
/// analytic (<see cref="FlopCount"/>), per run.
/// </summary>
public sealed class BenchCase : IDisposable
{
    private readonly Action _run;
    private readonly Action? _dispose;

    /// <param name="workload">Workload id, e.g. "distill-224".</param>
    /// <param name="variant">What differs between the cases of one workload, e.g. "fp32", "bf16".</param>
    /// <param name="flops">Matmul FLOPs of one run.</param>
    /// <param name="items">Images (or queries) per run, for images/s.</param>
    public BenchCase(string workload, string variant, double flops, int items, Action run, Action? dispose = null)
    {
        Workload = workload;
        Variant = variant;
        Flops = flops;
        Items = items;
        _run = run;
        _dispose = dispose;
    }

    public string Workload { get; }
    public string Variant { get; }
    public double Flops { get; }
    public int Items { get; }

    public void Run() => _run();

    public void Dispose() => _dispose?.Invoke();
}
