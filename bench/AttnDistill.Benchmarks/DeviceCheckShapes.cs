using AttnDistill.Models;
using static TorchSharp.torch;

namespace AttnDistill.Benchmarks;

/// <summary>
/// Shapes of the device check. <see cref="Gpu"/>: ViT-S/16 -> ViT-T/16 + projector at 224, batch
/// 128, 30 steps (what scripts/gpu-check.sh runs); <see cref="Small"/>: seconds on a CPU, for tests.
/// </summary>
public sealed record DeviceCheckShapes
{
    public Device Device { get; init; } = CPU;
    /// <summary>Teacher/student backbones and projector (image and patch come from <see cref="Distill"/>).</summary>
    public BenchShapes Bench { get; init; } = BenchShapes.Paper;
    public DistillShape Distill { get; init; } = new("distill-224", 224, 16, 128);
    public int Steps { get; init; } = 30;
    public int MatmulSize { get; init; } = 8192;
    public int MatmulRepeats { get; init; } = 10;
    public int KnnTrain { get; init; } = 2000;
    public int KnnTest { get; init; } = 500;
    public int KnnBatch { get; init; } = 250;
    public int Classes { get; init; } = 10;
    public long Seed { get; init; }

    public static DeviceCheckShapes Gpu(Device device) => new() { Device = device };

    public static DeviceCheckShapes Small(Device device) => new()
    {
        Device = device,
        Bench = BenchShapes.Tiny,
        Distill = new("distill-32", 32, 8, 8),
        Steps = 3,
        MatmulSize = 128,
        MatmulRepeats = 3,
        KnnTrain = 60, KnnTest = 20, KnnBatch = 20, Classes = 4,
    };
}
