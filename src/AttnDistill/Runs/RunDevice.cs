using TorchSharp;
using static TorchSharp.torch;

namespace AttnDistill.Runs;

/// <summary>
/// Turns `--device` into a libtorch device that exists, or a one-line error; never a silent
/// fallback to the CPU. Under mpirun a bare `cuda` means this rank's own GPU, `cuda:LOCAL_RANK`
/// (OMPI_COMM_WORLD_LOCAL_RANK), as torchrun's LOCAL_RANK does for PyTorch jobs.
/// </summary>
public static class RunDevice
{
    /// <summary>The MSBuild switch that builds against CUDA libtorch (named in errors).</summary>
    public const string CudaBuildSwitch = "-p:TorchBackend=cuda";

    /// <param name="text">cpu, cuda, cuda:N, or meta (shape-only tensors; used by tests to find forgotten devices).</param>
    /// <param name="localRank">This process's index on its machine (0 without mpirun).</param>
    public static Device Resolve(string text, int localRank = 0)
    {
        string t = (text ?? "").Trim().ToLowerInvariant();
        if (t == "cpu") return CPU;
        if (t == "meta") return new Device(DeviceType.META);
        if (t != "cuda" && !t.StartsWith("cuda:", StringComparison.Ordinal))
            throw new ArgumentException($"--device {text}: not a device; use cpu, cuda or cuda:N.");
        int index = localRank;
        if (t.StartsWith("cuda:", StringComparison.Ordinal) && (!int.TryParse(t.AsSpan(5), out index) || index < 0))
            throw new ArgumentException($"--device {text}: the GPU index must be a number >= 0 (cuda:0, cuda:1 ...).");
        bool available = cuda.is_available();
        int count = available ? cuda.device_count() : 0;
        if (!available)
            throw new ArgumentException(
                $"--device {text}: torch.cuda.is_available() is false (this build loads {TorchRuntime.BackendDescription}); build with {CudaBuildSwitch} on a machine with an NVIDIA driver, or use --device cpu.");
        if (index >= count)
            throw new ArgumentException(
                $"--device {text}: torch.cuda.device_count() is {count}, so cuda:{index} does not exist{(t == "cuda" && localRank > 0 ? $" (local rank {localRank} takes cuda:{localRank}: start at most {count} ranks per machine)" : "")}; use cuda:0..cuda:{count - 1}.");
        return new Device(DeviceType.CUDA, index);
    }

    public static string Name(Device d) => d.type switch
    {
        DeviceType.CPU => "cpu",
        DeviceType.CUDA => $"cuda:{Math.Max(0, d.index)}",
        _ => d.type.ToString().ToLowerInvariant(),
    };

    /// <summary>Same device type and index (Device has no value equality).</summary>
    public static bool Same(Device a, Device b) => Name(a) == Name(b);

    /// <summary>The device of a module's first parameter (a module lives on one device).</summary>
    public static Device Of(nn.Module module) =>
        module.parameters().FirstOrDefault()?.device ?? throw new ArgumentException("the module has no parameter to tell its device by.");

    public static bool IsCuda(Device d) => d.type == DeviceType.CUDA;
}
