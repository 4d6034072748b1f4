using AttnDistill.Distillation;
using AttnDistill.Models;
using AttnDistill.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace AttnDistill.Benchmarks;

/// <summary>How a distillation step is computed.</summary>
public enum DistillVariant
{
    /// <summary>The product's default: fp32, fused attention (SDPA) with the explicit CLS row.</summary>
    Fp32,
    /// <summary>Lever: the whole attention matrix materialized (DINO's path) in teacher and student.</summary>
    Fp32ExplicitAttention,
    /// <summary>Lever: the frozen teacher cast to bf16; the student in fp32.</summary>
    Bf16Teacher,
    /// <summary>The product's <c>--precision bf16</c>: teacher and student forward and the loss under <see cref="Autocast"/>, fp32 weights and gradients.</summary>
    Bf16,
    /// <summary>The product's <c>--teacher-cache</c> read path (fp32): the teacher's targets come from a filled cache, the teacher does not run.</summary>
    Fp32TeacherCache,
}

/// <summary>
/// One AttnDistill training step (workloads 1 and 2): the real <see cref="DistillationTask"/>
/// (teacher forward without grad, student with projector, attention loss with product
/// aggregation) driven by the product's <see cref="Trainer"/> (AdamW). The teacher has random
/// weights: the step's cost does not depend on them.
/// </summary>
public static class DistillStepCases
{
    public static string Name(DistillVariant v) => v switch
    {
        DistillVariant.Fp32 => "fp32",
        DistillVariant.Fp32ExplicitAttention => "fp32-explicit-attn",
        DistillVariant.Bf16Teacher => "bf16-teacher",
        DistillVariant.Bf16 => "bf16",
        DistillVariant.Fp32TeacherCache => "fp32-teacher-cache",
        _ => v.ToString(),
    };

    public static BenchCase Create(BenchShapes shapes, DistillShape shape, DistillVariant variant, long seed = 0)
    {
        var build = Build(shapes, shape, variant, seed);
        double flops = shape.BatchSize * FlopCount.DistillStepPerImage(build.TeacherConfig, build.StudentConfig, shapes.ProjectorLayers);
        // A cached step does not run the teacher: its FLOP/s counts only what it computes.
        if (variant == DistillVariant.Fp32TeacherCache) flops -= shape.BatchSize * FlopCount.VitForward(build.TeacherConfig, clsRowBlocks: 1);
        return new BenchCase(shape.Id, Name(variant), flops, shape.BatchSize, () => build.Harness.Step(), build.Dispose);
    }

    /// <summary>The modules, task and trainer of one variant (also used for the memory and loss-curve runs).</summary>
    public sealed class Built : IDisposable
    {
        public required VitConfig TeacherConfig { get; init; }
        public required VitConfig StudentConfig { get; init; }
        public required VisionTransformer Teacher { get; init; }
        public required DistillStudent Student { get; init; }
        public required TrainingStepHarness Harness { get; init; }
        /// <summary>The filled teacher-target cache of <see cref="DistillVariant.Fp32TeacherCache"/> and its temporary folder.</summary>
        public Distillation.TeacherCache.TeacherTargetCache? Cache { get; init; }
        public string? CacheDir { get; init; }

        public void Dispose()
        {
            Harness.Dispose();
            Cache?.Dispose();
            if (CacheDir is not null) try { Directory.Delete(CacheDir, recursive: true); } catch (IOException) { }
            Teacher.Dispose();
            Student.Dispose();
        }
    }

    /// <param name="device">Where modules and batch live; null: the CPU. Moved before any task or optimizer holds a parameter.</param>
    public static Built Build(BenchShapes shapes, DistillShape shape, DistillVariant variant, long seed = 0, Device? device = null)
    {
        manual_seed(seed);
        var teacherConfig = shapes.TeacherFor(shape);
        var studentConfig = shapes.StudentFor(shape);
        var teacher = new VisionTransformer(teacherConfig);
        var student = new DistillStudent(studentConfig, teacherConfig.EmbedDim, shapes.ProjectorLayers);
        if (device is not null) { teacher.to(device); student.to(device); }
        var loss = new DistillLossOptions();   // the paper's best: lambda 0.1, T 10, product aggregation, last block
        ITrainingTask task;
        var precision = ComputePrecision.Float32;
        Distillation.TeacherCache.TeacherTargetCache? cache = null;
        string? cacheDir = null;
        switch (variant)
        {
            case DistillVariant.Fp32:
                task = new DistillationTask(teacher, student, loss);
                break;
            case DistillVariant.Fp32ExplicitAttention:
                teacher.UseFusedAttention = false;
                student.Backbone.UseFusedAttention = false;
                task = new DistillationTask(teacher, student, loss);
                break;
            case DistillVariant.Bf16Teacher:
                teacher.to(ScalarType.BFloat16);
                task = new DistillationTask(teacher, student, loss);
                break;
            case DistillVariant.Bf16:
                task = new DistillationTask(teacher, student, loss);
                precision = ComputePrecision.BFloat16;
                break;
            case DistillVariant.Fp32TeacherCache:
                cacheDir = Directory.CreateTempSubdirectory("attndistill-bench-cache-").FullName;
                cache = Distillation.TeacherCache.TeacherTargetCache.Open(cacheDir, BenchCacheHeader(teacherConfig, studentConfig, shape.BatchSize));
                task = new DistillationTask(teacher, student, loss, cache: cache);
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(variant));
        }
        var harness = new TrainingStepHarness(task, shape.BatchSize, shape.ImageSize, seed, precision, device);
        if (cache is not null)
        {
            // One online pass fills the harness batch's rows; every timed step then reads them.
            harness.LossParts();
            cache.CompleteEpoch(0);
        }
        return new Built { TeacherConfig = teacherConfig, StudentConfig = studentConfig, Teacher = teacher, Student = student, Harness = harness, Cache = cache, CacheDir = cacheDir };
    }

    /// <summary>The header of the bench's cache: the harness's fixed batch as a one-epoch data set, the default loss's targets (last-block CLS rows).</summary>
    static Distillation.TeacherCache.TeacherCacheHeader BenchCacheHeader(VitConfig teacher, VitConfig student, int batch)
    {
        var (feature, attention, valueNorms) = Distillation.TeacherCache.TeacherCacheHeader.Targets(teacher, student.ImageSize, new DistillLossOptions(), DistillationMethod.AttnDistill);
        return new()
        {
            TeacherSha256 = "bench", Data = "bench", Images = batch, ImageSize = student.ImageSize, Crop = "none", Seed = 0, BatchSize = batch,
            Dtype = "float32", FeatureShape = feature, AttentionShape = attention, ValueNorms = valueNorms, RowsPerEpoch = batch,
        };
    }
}
