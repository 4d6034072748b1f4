using AttnDistill.Models;

namespace AttnDistill.Benchmarks;

/// <summary>A distillation step's shape: image side, patch size (teacher and student), batch.</summary>
public sealed record DistillShape(string Id, int ImageSize, int PatchSize, int BatchSize);

/// <summary>
/// Shapes of every workload. <see cref="Paper"/>: the paper's shapes where a CPU run is bearable;
/// <see cref="Tiny"/> runs in seconds, for tests.
/// </summary>
public sealed record BenchShapes
{
    public int MatmulSize { get; init; } = 2048;
    /// <summary>Teacher backbone shape (image and patch sizes come from each workload).</summary>
    public VitConfig Teacher { get; init; } = VitPresets.Get("vit_small_patch16");
    /// <summary>Student backbone shape.</summary>
    public VitConfig Student { get; init; } = VitPresets.Get("vit_tiny_patch16");
    public int ProjectorLayers { get; init; } = 4;
    public DistillShape Distill224 { get; init; } = new("distill-224", 224, 16, 32);
    public DistillShape Distill32 { get; init; } = new("distill-32", 32, 4, 256);
    /// <summary>MAE encoder (ViT-S/16 at 224); the decoder is MaeConfig.For's.</summary>
    public VitConfig MaeEncoder { get; init; } = VitPresets.Get("vit_small_patch16") with { ImageSize = 224 };
    public int MaeBatch { get; init; } = 32;
    public int KnnBank { get; init; } = 50_000;
    public int KnnQueries { get; init; } = 10_000;
    public int KnnDim { get; init; } = 384;
    public int KnnK { get; init; } = 20;
    public int KnnClasses { get; init; } = 10;
    /// <summary>Feature extraction backbone (ViT-S/16 at 224).</summary>
    public VitConfig FeatureBackbone { get; init; } = VitPresets.Get("vit_small_patch16") with { ImageSize = 224 };
    public int FeatureBatch { get; init; } = 64;

    public static BenchShapes Paper { get; } = new();

    public static BenchShapes Tiny { get; } = new()
    {
        MatmulSize = 64,
        Teacher = new VitConfig { EmbedDim = 48, Depth = 2, NumHeads = 3 },
        Student = new VitConfig { EmbedDim = 24, Depth = 2, NumHeads = 3 },
        ProjectorLayers = 2,
        Distill224 = new("distill-224", 32, 8, 2),
        Distill32 = new("distill-32", 16, 4, 2),
        MaeEncoder = new VitConfig { EmbedDim = 48, Depth = 2, NumHeads = 3, ImageSize = 32, PatchSize = 8 },
        MaeBatch = 2,
        KnnBank = 200, KnnQueries = 50, KnnDim = 16, KnnK = 5,
        FeatureBackbone = new VitConfig { EmbedDim = 48, Depth = 2, NumHeads = 3, ImageSize = 32, PatchSize = 8 },
        FeatureBatch = 2,
    };

    public VitConfig TeacherFor(DistillShape s) => Teacher with { ImageSize = s.ImageSize, PatchSize = s.PatchSize };
    public VitConfig StudentFor(DistillShape s) => Student with { ImageSize = s.ImageSize, PatchSize = s.PatchSize };
}
