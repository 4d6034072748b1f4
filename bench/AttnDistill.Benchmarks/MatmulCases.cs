using static TorchSharp.torch;

namespace AttnDistill.Benchmarks;

/// <summary>The machine's bar: one square matrix product in fp32 and in bf16, timed like every workload.</summary>
public static class MatmulCases
{
    /// <param name="device">Where the product runs; null: the CPU (on an accelerator the caller synchronizes before reading a clock).</param>
    public static BenchCase Create(int n, ScalarType dtype, Device? device = null)
    {
        var generator = new Generator(0);
        var a = randn(new long[] { n, n }, generator: generator).to(dtype);
        var b = randn(new long[] { n, n }, generator: generator).to(dtype);
        if (device is not null) { a = a.to(device); b = b.to(device); }
        string variant = dtype == ScalarType.BFloat16 ? "bf16" : dtype == ScalarType.Float32 ? "fp32" : dtype.ToString();
        return new BenchCase("matmul", variant, FlopCount.SquareMatmul(n), 1,
            () => { using var c = a.mm(b); },
            () => { a.Dispose(); b.Dispose(); });
    }
}
