using AttnDistill.Benchmarks;
using AttnDistill.Models;
using AttnDistill.Pretraining;
using AttnDistill.Training;
using Xunit;
using static TorchSharp.torch;

namespace AttnDistill.Tests.Benchmarks;

public class BenchTests
{
    [Fact]
    public void FlopCountMatchesAHandCount()
    {
        // Image 8, patch 4 -> 4 patches, N = 5 tokens, D = 8, MLP 32, one block.
        var c = new VitConfig { ImageSize = 8, PatchSize = 4, EmbedDim = 8, Depth = 1, NumHeads = 2 };
        double patchEmbed = 2 * 4 * (4 * 4 * 3) * 8;                     // 3072
        double qkv = 2 * 5 * 8 * 24, qk = 2 * 5 * 5 * 8, av = 2 * 5 * 5 * 8, proj = 2 * 5 * 8 * 8;
        double fc1 = 2 * 5 * 8 * 32, fc2 = 2 * 5 * 32 * 8;
        double forward = patchEmbed + qkv + qk + av + proj + fc1 + fc2;  // 11552
        Assert.Equal(forward, FlopCount.VitForward(c));
        Assert.Equal(3 * forward - patchEmbed, FlopCount.VitTrain(c));
        Assert.Equal(forward + 2 * 5 * 8, FlopCount.VitForward(c, clsRowBlocks: 1));
        // MAE keeping 1 of 4 patches: the encoder blocks see 2 tokens.
        Assert.Equal(patchEmbed + FlopCount.Block(2, 8, 32), FlopCount.VitForward(c, keptPatches: 1));
        // Projector 8 -> 16 -> 8 -> 16 -> 24 on the CLS token.
        Assert.Equal(2.0 * (8 * 16 + 16 * 8 + 8 * 16 + 16 * 24), FlopCount.Projector(8, 24, 4));
    }

    [Fact]
    public void FlopCountOfVitSmallIsTheKnownFigure()
    {
        // timm lists ViT-S/16 at 224 as 4.6 GMACs.
        double gmacs = FlopCount.VitForward(VitPresets.Get("vit_small_patch16")) / 2e9;
        Assert.InRange(gmacs, 4.55, 4.65);
        var mae = MaeConfig.For(VitPresets.Get("vit_small_patch16"));
        Assert.True(FlopCount.MaeForward(mae) < FlopCount.VitForward(mae.Encoder));   // 3/4 of the patches are masked
    }

    [Fact]
    public void KnnChunkGrowsForSmallBanksOnly()
    {
        Assert.Equal(1342, AttnDistill.Evaluation.Knn.ChunkFor(50_000));       // CIFAR-10: a 256 MB block
        Assert.Equal(256, AttnDistill.Evaluation.Knn.ChunkFor(1_281_167));     // ImageNet: the old fixed size
        Assert.Equal(8192, AttnDistill.Evaluation.Knn.ChunkFor(100));
    }

    [Fact]
    public void TheTorchvisionReferenceShipsInsideTheLibraryAndSaysWhyItDidNotRun()
    {
        using (var script = typeof(TorchvisionReference).Assembly.GetManifestResourceStream("data_torchvision.py"))
            Assert.NotNull(script);
        string? before = Environment.GetEnvironmentVariable("ATTNDISTILL_PYTHON");
        try
        {
            Environment.SetEnvironmentVariable("ATTNDISTILL_PYTHON", "/nonexistent/python3");
            var timing = TorchvisionReference.Measure("/nonexistent/data", 224, workers: 1, repeats: 1);
            Assert.Null(timing.ImagesPerSecond);
            Assert.Contains("/nonexistent/python3 not found", timing.Note);
        }
        finally
        {
            Environment.SetEnvironmentVariable("ATTNDISTILL_PYTHON", before);
        }
    }

    [Fact]
    public void TinyBenchRunsOneWorkloadOnce()
    {
        var report = BenchSuite.Run(new BenchOptions
        {
            Shapes = BenchShapes.Tiny, Workloads = new[] { "distill-224" }, Warmup = 0, Repeats = 1, MatmulRepeats = 1,
            Levers = false, Memory = true, MaxWait = TimeSpan.Zero,
        }, "test");
        Assert.Equal(new[] { "fp32", "bf16", "fp32-teacher-cache", BenchSuite.BarVariant }, report.Rows.Select(r => r.Timing.Variant));
        // The cached step does not run the teacher, and its FLOP count says so.
        Assert.True(report.Rows.Single(r => r.Timing.Variant == "fp32-teacher-cache").Timing.Flops < report.Rows.Single(r => r.Timing.Variant == "fp32").Timing.Flops);
        Assert.All(report.Rows, r => Assert.True(r.Timing.Flops > 0 && r.Timing.Seconds.Single() > 0 && r.FractionOfFp32Matmul > 0));
        var memory = Assert.Single(report.Memory);
        Assert.True(memory.Analytic.Total > 0 && memory.PeakBytes >= memory.PeakAfterBuildBytes);
    }

    [Fact]
    public void Bf16StepTrainsTheFp32ParametersUnderAutocast()
    {
        var shapes = BenchShapes.Tiny;
        using var built = DistillStepCases.Build(shapes, shapes.Distill224, DistillVariant.Bf16);
        Assert.Equal(ComputePrecision.BFloat16, built.Harness.Precision);
        var before = built.Student.parameters().Select(p => p.detach().clone()).ToArray();
        double loss = built.Harness.Step();
        Assert.True(double.IsFinite(loss));
        var parameters = built.Student.parameters().ToArray();
        Assert.All(parameters, p => Assert.Equal(ScalarType.Float32, p.dtype));
        Assert.All(built.Teacher.parameters(), p => Assert.Equal(ScalarType.Float32, p.dtype));   // no bf16 teacher copy either
        Assert.Contains(parameters.Zip(before), pair => !pair.First.eq(pair.Second).all().item<bool>());   // the optimizer moved them
        Assert.False(Autocast.IsEnabled);   // the scope closed with the step
        Assert.All(before, t => t.Dispose());
    }
}
