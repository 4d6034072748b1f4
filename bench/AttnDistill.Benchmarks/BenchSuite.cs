using AttnDistill.Evaluation;
using AttnDistill.Training;
using static TorchSharp.torch;

namespace AttnDistill.Benchmarks;

/// <summary>
/// `attndistill bench`: the fp32 and bf16 matmul bar first, then each workload's variants in
/// turn (each group also times the fp32 matmul bar among its variants, under the same load), and
/// the peak memory of the first distillation workload. Every timing carries the load average.
/// </summary>
public static class BenchSuite
{
    public const string BarVariant = "matmul-fp32-bar";

    public static BenchReport Run(BenchOptions options, string command, Action<string>? log = null, CancellationToken cancel = default)
    {
        options.Validate();
        var quiet = new QuietWaiter(options, log, cancel);
        var shapes = options.Shapes;
        log?.Invoke($"libtorch {__version__}, {get_num_threads()} threads");

        quiet.Wait();
        var bar = BenchRunner.Measure(new[] { MatmulCases.Create(shapes.MatmulSize, ScalarType.Float32), MatmulCases.Create(shapes.MatmulSize, ScalarType.BFloat16) },
            warmup: 2, options.MatmulRepeats, log, cancel);
        var (fp32, bf16) = (bar[0], bar[1]);
        log?.Invoke($"matmul {shapes.MatmulSize}: fp32 {fp32.FlopsPerSecond / 1e9:F1} GFLOP/s, bf16 {bf16.FlopsPerSecond / 1e9:F1} GFLOP/s (load {fp32.MedianLoad:F2})");

        var memory = new List<MemoryResult>();
        if (options.Memory && options.Workloads.Contains(shapes.Distill224.Id))
        {
            quiet.Wait();
            var variants = options.Levers ? new[] { DistillVariant.Fp32, DistillVariant.Bf16, DistillVariant.Fp32ExplicitAttention } : new[] { DistillVariant.Fp32 };
            foreach (var v in variants)
            {
                var m = MeasureDistillMemory(shapes, shapes.Distill224, v, options.Seed);
                log?.Invoke($"memory {m.Workload} {m.Variant}: peak {m.PeakAboveBaselineBytes / 1e6:F0} MB above baseline, analytic {m.Analytic.Total / 1e6:F0} MB (x{m.RatioToAnalytic:F2})");
                memory.Add(m);
            }
        }

        var rows = new List<BenchRow>();
        foreach (var workload in options.Workloads)
        {
            quiet.Wait();
            log?.Invoke($"{workload}: building");
            var cases = new List<BenchCase>();
            try
            {
                cases.AddRange(Cases(workload, options));
                var barCase = MatmulCases.Create(shapes.MatmulSize, ScalarType.Float32);
                cases.Add(new BenchCase(workload, BarVariant, barCase.Flops, 1, barCase.Run, barCase.Dispose));
                var timings = BenchRunner.Measure(cases, options.Warmup, options.Repeats, log, cancel);
                var interleaved = timings.Single(t => t.Variant == BarVariant);
                foreach (var t in timings)
                    rows.Add(new BenchRow(t, t.FlopsPerSecond / fp32.FlopsPerSecond, t.FlopsPerSecond / bf16.FlopsPerSecond,
                        t.FlopsPerSecond / interleaved.FlopsPerSecond, t.Flops / t.MinSeconds / (interleaved.Flops / interleaved.MinSeconds)));
            }
            finally
            {
                foreach (var c in cases) c.Dispose();
                GC.Collect();
            }
        }
        var data = new List<DataThroughputRow>();
        foreach (var root in options.DataRoots)
            foreach (int workers in options.DataWorkers)
            {
                quiet.Wait();
                var row = DataThroughputBench.Measure(root, 224, workers, repeats: 3);
                if (options.TorchvisionReference)
                {
                    var reference = TorchvisionReference.Measure(root, 224, workers, repeats: 3);
                    row = row with { Torchvision = reference };
                }
                log?.Invoke($"data {root}, {workers} workers: {row.MedianImagesPerSecond:F0} images/s" +
                    (row.Torchvision is { ImagesPerSecond: { } tv } ? $", torchvision {tv:F0} ({row.MedianImagesPerSecond / tv:F2}x)" : row.Torchvision is { } t ? $"; torchvision not timed: {t.Note}" : "") +
                    $" (load {row.MedianLoad:F2})");
                data.Add(row);
            }
        return new BenchReport
        {
            Date = DateTime.Now.ToString("yyyy-MM-dd HH:mm"), Libtorch = __version__, Threads = get_num_threads(),
            Cores = Environment.ProcessorCount, Command = command, MatmulFp32 = fp32, MatmulBf16 = bf16, Rows = rows, Memory = memory, Data = data,
        };
    }

    static IEnumerable<BenchCase> Cases(string workload, BenchOptions o)
    {
        var s = o.Shapes;
        switch (workload)
        {
            case "distill-224":
            case "distill-32":
                var shape = workload == s.Distill224.Id ? s.Distill224 : s.Distill32;
                var variants = o.Levers
                    ? new[] { DistillVariant.Fp32, DistillVariant.Bf16, DistillVariant.Fp32TeacherCache, DistillVariant.Fp32ExplicitAttention, DistillVariant.Bf16Teacher }
                    : new[] { DistillVariant.Fp32, DistillVariant.Bf16, DistillVariant.Fp32TeacherCache };
                foreach (var v in variants) yield return DistillStepCases.Create(s, shape, v, o.Seed);
                if (o.Levers && workload == s.Distill224.Id)
                    foreach (var c in StepOverheadCases.Create(s, shape, o.Seed)) yield return c;
                break;
            case "mae-224":
                yield return MaeStepCases.Create(s, bf16: false, o.Seed);
                yield return MaeStepCases.Create(s, bf16: true, o.Seed);
                break;
            case "knn":
                foreach (var c in KnnCases.Create(s, o.Levers ? new[] { 0, Knn.DefaultChunkSize } : new[] { 0 }, o.Seed))
                    yield return c;
                break;
            case "features-224":
                yield return FeatureExtractionCases.Create(s, FeatureVariant.Fp32, o.Seed);
                yield return FeatureExtractionCases.Create(s, FeatureVariant.Bf16, o.Seed);
                if (o.Levers)
                {
                    yield return FeatureExtractionCases.Create(s, FeatureVariant.Fp32InferenceMode, o.Seed);
                    yield return FeatureExtractionCases.Create(s, FeatureVariant.Fp32OneThread, o.Seed);
                }
                break;
            default:
                throw new ArgumentException($"unknown workload '{workload}'.");
        }
    }

    /// <summary>Peak resident memory of building a distillation step and running three steps, above the size before.</summary>
    public static MemoryResult MeasureDistillMemory(BenchShapes shapes, DistillShape shape, DistillVariant variant, long seed)
    {
        // Collect, finalize and hand free heap pages back first, so the baseline is the live size.
        NativeHeap.Release();
        long baseline = PeakMemory.CurrentBytes();
        PeakMemory.ResetPeak();
        double load = MachineLoad.OneMinute();
        using var built = DistillStepCases.Build(shapes, shape, variant, seed);
        long afterBuild = PeakMemory.PeakBytes();
        built.Harness.Step();
        long afterFirst = PeakMemory.PeakBytes();
        for (int i = 1; i < 3; i++) built.Harness.Step();
        long peak = PeakMemory.PeakBytes();
        long teacherParams = built.Teacher.parameters().Sum(p => p.numel());
        long studentParams = built.Student.parameters().Where(p => p.requires_grad).Sum(p => p.numel());
        bool bf16 = variant == DistillVariant.Bf16;
        var analytic = MemoryFootprint.DistillStep(built.TeacherConfig, built.StudentConfig, teacherParams, studentParams, shape.BatchSize,
            teacherBytesPerValue: variant == DistillVariant.Bf16Teacher ? 2 : 4, autocast: bf16,
            explicitAttention: variant == DistillVariant.Fp32ExplicitAttention);
        return new MemoryResult(shape.Id, DistillStepCases.Name(variant), baseline, peak, afterBuild, afterFirst, analytic, load);
    }

    /// <summary>
    /// Waits for a quiet machine before each workload. Once a wait has timed out the machine is
    /// taken to be busy for the run: later waits are capped at 2 minutes (figures carry their load).
    /// </summary>
    private sealed class QuietWaiter(BenchOptions o, Action<string>? log, CancellationToken cancel)
    {
        private bool _busy;

        public void Wait()
        {
            if (o.MaxWait <= TimeSpan.Zero) return;
            var limit = _busy && o.MaxWait > TimeSpan.FromMinutes(2) ? TimeSpan.FromMinutes(2) : o.MaxWait;
            double load = MachineLoad.WaitForQuiet(o.QuietLoad, limit, log, cancel);
            if (!(load < o.QuietLoad) && !double.IsNaN(load) && !_busy)
            {
                _busy = true;
                log?.Invoke($"machine still busy (load {load:F2}): measuring anyway; fractions are lower bounds");
            }
        }
    }
}
