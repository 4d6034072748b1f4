using TorchSharp;

namespace AttnDistill;

/// <summary>Process-wide libtorch set-up: load the native library once and report what runs.</summary>
public static class TorchRuntime
{
    /// <summary>Which libtorch this build links: the package family and what it reports about CUDA.</summary>
    public static string BackendDescription =>
        $"libtorch {torch.__version__} ({(torch.cuda.is_available() ? $"CUDA, {torch.cuda.device_count()} GPU(s)" : "no usable CUDA: a CPU build or no NVIDIA driver")})";

    /// <summary>Forces libtorch to load (so a broken native install fails early, with its own message).</summary>
    public static string Describe()
    {
        using var probe = torch.ones(2, 2);
        float sum = probe.sum().item<float>();
        string allocator = NativeAllocator.Name();
        string advice = NativeAllocator.Advice() is { } a ? $" ({a})" : "";
        return $"libtorch {torch.__version__}, threads {torch.get_num_threads()}, probe sum {sum}, allocator {allocator}{advice}";
    }
}
