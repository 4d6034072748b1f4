using static TorchSharp.torch;

namespace AttnDistill.Tests.Export;

/// <summary>
/// libtorch on one thread while a test class runs, restored afterwards. The export tests run many
/// small ops; on the shared 2-core machine libtorch's OpenMP workers spin-wait for each other while
/// other processes hold the cores (10x slower seen under load), and one thread loses nothing here.
/// </summary>
sealed class SingleTorchThread : IDisposable
{
    readonly int _threads = get_num_threads();

    public SingleTorchThread() => set_num_threads(1);

    public void Dispose() => set_num_threads(_threads);
}
