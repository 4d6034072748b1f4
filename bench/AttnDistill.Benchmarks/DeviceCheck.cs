using System.Diagnostics;
using AttnDistill.Evaluation;
using AttnDistill.Export;
using AttnDistill.Models;
using AttnDistill.Runs;
using TorchSharp;
using static TorchSharp.torch;

namespace AttnDistill.Benchmarks;

/// <summary>One line of the device check: a number, what it is measured against, and whether it passed.</summary>
public sealed record DeviceCheckRow(string Check, double Value, string Unit, string Reference, bool Ok);

/// <summary>
/// `attndistill bench --suite device-check`: what scripts/gpu-check.sh runs on a GPU box, and the
/// test suite on the CPU with small shapes. On <see cref="DeviceCheckShapes.Device"/>: the bf16
/// matmul bar; bf16 distillation steps (teacher -> student + projector), their first-step loss
/// parts against the same batch and weights in fp32 on the CPU, images/s and the fraction of the
/// bar; a k-NN pass over a synthetic labelled set (features and vote on the device, the vote again
/// on the CPU); an ONNX export of the trained student. Every number must be finite; the loss parts
/// and the k-NN accuracy must agree with the CPU within the stated tolerance.
/// </summary>
public static class DeviceCheck
{
    /// <summary>bf16 against fp32, first step: bf16 keeps 8 bits of mantissa (0.4 %), the loss sums thousands of them.</summary>
    public const double Bf16LossTolerance = 0.05;

    public static IReadOnlyList<DeviceCheckRow> Run(DeviceCheckShapes s, string outDir, Action<string>? log = null)
    {
        var device = s.Device;
        bool cuda = RunDevice.IsCuda(device);
        void Sync() { if (cuda) torch.cuda.synchronize(device); }
        var rows = new List<DeviceCheckRow>();
        void Add(string check, double value, string unit, string reference, bool ok = true)
        {
            var row = new DeviceCheckRow(check, value, unit, reference, ok && double.IsFinite(value));
            rows.Add(row);
            log?.Invoke($"{check}: {value:G5} {unit} ({reference}){(row.Ok ? "" : " FAILED")}");
        }
        double Time(Action a, int repeats)
        {
            var seconds = new List<double>();
            for (int i = 0; i < repeats; i++)
            {
                Sync();
                var w = Stopwatch.StartNew();
                a();
                Sync();
                seconds.Add(w.Elapsed.TotalSeconds);
            }
            return BenchTiming.Median(seconds);
        }

        // 1. The device's own bar.
        double barFlops;
        using (var bar = MatmulCases.Create(s.MatmulSize, ScalarType.BFloat16, device))
        {
            bar.Run();
            double sec = Time(bar.Run, s.MatmulRepeats);
            barFlops = bar.Flops / sec;
            Add($"matmul bf16 {s.MatmulSize}", barFlops / 1e12, "TFLOP/s", $"median of {s.MatmulRepeats}");
        }

        // 2. First-step loss parts: bf16 on the device vs fp32 on the CPU, same seed -> same weights and batch.
        var shape = s.Distill;
        IReadOnlyDictionary<string, double> reference;
        using (var cpu = DistillStepCases.Build(s.Bench, shape, DistillVariant.Fp32, s.Seed, CPU))
            reference = cpu.Harness.LossParts();
        using var built = DistillStepCases.Build(s.Bench, shape, DistillVariant.Bf16, s.Seed, device);
        var first = built.Harness.LossParts();
        foreach (var (name, cpuValue) in reference)
        {
            double rel = Math.Abs(first[name] - cpuValue) / Math.Max(Math.Abs(cpuValue), 1e-12);
            Add($"step-1 loss {name}: bf16 {RunDevice.Name(device)} vs fp32 cpu", rel, "rel. error",
                $"< {Bf16LossTolerance} ({first[name]:G5} vs {cpuValue:G5})", rel < Bf16LossTolerance);
        }

        // 3. Distillation steps on the device.
        var stepSeconds = new List<double>();
        double firstLoss = double.NaN, lastLoss = double.NaN;
        for (int i = 0; i < s.Steps; i++)
        {
            Sync();
            var w = Stopwatch.StartNew();
            double loss = built.Harness.Step();
            Sync();
            stepSeconds.Add(w.Elapsed.TotalSeconds);
            if (i == 0) firstLoss = loss;
            lastLoss = loss;
        }
        // The first step pays for kernel selection and allocator warm-up: timed apart.
        double median = BenchTiming.Median(stepSeconds.Count > 1 ? stepSeconds.Skip(1).ToArray() : stepSeconds);
        double stepFlops = shape.BatchSize * FlopCount.DistillStepPerImage(built.TeacherConfig, built.StudentConfig, s.Bench.ProjectorLayers);
        Add($"distill steps ({s.Steps}, batch {shape.BatchSize}, {shape.ImageSize} px)", shape.BatchSize / median, "images/s",
            $"median step {median * 1e3:F1} ms, first {stepSeconds[0] * 1e3:F0} ms");
        Add("distill step of bf16 matmul bar", stepFlops / median / barFlops, "fraction", $"{stepFlops / median / 1e12:G4} TFLOP/s of {barFlops / 1e12:G4}");
        Add("distill loss after the steps", lastLoss, "loss", $"step 1: {firstLoss:G5}", double.IsFinite(firstLoss));

        // 4. k-NN with the trained student's backbone: features and vote on the device, the vote again on the CPU.
        var backbone = built.Student.Backbone;
        backbone.eval();
        using var train = SyntheticSet(s.KnnTrain, s, 1);
        using var test = SyntheticSet(s.KnnTest, s, 2);
        FeatureSet? trainFeatures = null, testFeatures = null;
        double extractSeconds = Time(() =>
        {
            trainFeatures?.Dispose();
            testFeatures?.Dispose();
            trainFeatures = FeatureExtractor.Extract(backbone.forward, Batches(train, s.KnnBatch), device);
            testFeatures = FeatureExtractor.Extract(backbone.forward, Batches(test, s.KnnBatch), device);
        }, 1);
        using var trainF = trainFeatures!;
        using var testF = testFeatures!;
        Add("k-NN features", (s.KnnTrain + s.KnnTest) / extractSeconds, "images/s", $"{s.KnnTrain} + {s.KnnTest} images, batch {s.KnnBatch}");
        var ks = new[] { Math.Min(20, s.KnnTrain) };
        double onDevice;
        using (var bank = trainF.Features.to(device))
        using (var queries = testF.Features.to(device))
        {
            KnnResult r = default!;
            double sec = Time(() => r = Knn.Classify(bank, trainF.Labels, queries, testF.Labels, s.Classes, ks)[0], 1);
            onDevice = r.Top1;
            Add($"k-NN top-1 on {RunDevice.Name(device)} (k {ks[0]})", onDevice, "%", $"{sec * 1e3:F1} ms; chance {100.0 / s.Classes:F0} %");
        }
        double onCpu = Knn.Classify(trainF.Features, trainF.Labels, testF.Features, testF.Labels, s.Classes, ks)[0].Top1;
        // Ties between equal similarities may break differently across devices: one query's worth.
        double oneQuery = 100.0 / s.KnnTest;
        Add("k-NN top-1: device minus cpu", onDevice - onCpu, "points", $"abs <= {oneQuery:G3} (cpu {onCpu:F1} %)", Math.Abs(onDevice - onCpu) <= oneQuery + 1e-9);

        // 5. ONNX export of the trained student (the exporter reads the weights to the host itself).
        Directory.CreateDirectory(outDir);
        string onnx = Path.Combine(outDir, "student.onnx");
        var watch = Stopwatch.StartNew();
        long bytes = VitOnnxExporter.Save(VitOnnxExporter.Build(backbone), onnx);
        Add("ONNX export of the student", watch.Elapsed.TotalSeconds, "s", $"{bytes / 1e6:F1} MB, {onnx}", new FileInfo(onnx).Length == bytes);
        return rows;
    }

    /// <summary>Images whose class sets a per-channel offset on top of noise: separable by any backbone.</summary>
    static SyntheticImages SyntheticSet(int count, DeviceCheckShapes s, ulong stream)
    {
        var g = new Generator((ulong)s.Seed * 1000 + stream);
        var labels = randint(s.Classes, new long[] { count }, generator: g);
        var offsets = randn(new long[] { s.Classes, 3, 1, 1 }, generator: new Generator((ulong)s.Seed));
        var images = randn(new long[] { count, 3, s.Distill.ImageSize, s.Distill.ImageSize }, generator: g).add_(offsets.index_select(0, labels).mul_(2));
        offsets.Dispose();
        return new SyntheticImages(images, labels);
    }

    static IEnumerable<(Tensor Images, Tensor Labels)> Batches(SyntheticImages set, int batch)
    {
        long n = set.Images.shape[0];
        for (long i = 0; i < n; i += batch)
        {
            long b = Math.Min(batch, n - i);
            yield return (set.Images.narrow(0, i, b), set.Labels.narrow(0, i, b));
        }
    }

    sealed record SyntheticImages(Tensor Images, Tensor Labels) : IDisposable
    {
        public void Dispose()
        {
            Images.Dispose();
            Labels.Dispose();
        }
    }
}
