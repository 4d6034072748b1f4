// Latency of one forward pass (normalized CLS feature) of a ViT student: TorchSharp (libtorch, fused
// attention) vs the file `attndistill export` writes, run by ONNX Runtime (float32, and int8 dynamic
// quantization), same thread count, same input. The engines take turns in blocks of runs so that
// load from other processes on a shared machine falls on all of them alike; medians are reported.
//
//   dotnet run -c Release --project bench/AttnDistill.Bench.Onnx -- [--preset vit_tiny_patch16]
//       [--image-size 224] [--batch 1] [--threads 2] [--runs 200] [--block 10] [--warmup 20] [--passive]
// --passive turns ONNX Runtime's spin-waiting off; give libtorch's OpenMP the same with
// OMP_WAIT_POLICY=PASSIVE in the environment (read when libtorch loads, so it cannot be set from here).
// On a machine shared with other busy processes, spinning threads of either engine mostly wait for
// each other; the passive settings measure the engines rather than the contention.
using System.Diagnostics;
using AttnDistill.Export;
using AttnDistill.Models;
using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using static TorchSharp.torch;

var opt = Args.Parse(args);
set_num_threads(opt.Threads);
set_num_interop_threads(1);
manual_seed(0);
var cfg = VitPresets.Get(opt.Preset) with { ImageSize = opt.ImageSize };
using var model = new VisionTransformer(cfg);
model.eval();

byte[] fp32 = VitOnnxExporter.Build(model).ToByteArray();
byte[] int8 = VitOnnxExporter.Build(model, new OnnxExportOptions { Quantization = OnnxQuantization.DynamicInt8 }).ToByteArray();

InferenceSession Session(byte[] bytes)
{
    var so = new SessionOptions
    {
        IntraOpNumThreads = opt.Threads,
        InterOpNumThreads = 1,
        ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
        GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
    };
    if (opt.Passive) so.AddSessionConfigEntry("session.intra_op.allow_spinning", "0");
    return new InferenceSession(bytes, so);
}
using var ortFp32 = Session(fp32);
using var ortInt8 = Session(int8);

manual_seed(1);
using var x = randn(opt.Batch, cfg.InChans, cfg.ImageSize, cfg.ImageSize);
float[] data = x.data<float>().ToArray();
using var input = OrtValue.CreateTensorValueFromMemory(data, x.shape);
using var runOptions = new RunOptions();
string[] inNames = { VitOnnxExporter.ImageInput }, outNames = { VitOnnxExporter.FeatureOutput };
var inValues = new[] { input };

float[] RunOrt(InferenceSession s)
{
    using var outs = s.Run(runOptions, inNames, inValues, outNames);
    return outs[0].GetTensorDataAsSpan<float>().ToArray();
}
float[] RunTorch()
{
    using var _ = no_grad();
    using var f = model.forward(x);
    return f.data<float>().ToArray();
}

var engines = new (string Name, Func<float[]> Run)[]
{
    ("TorchSharp 0.107 (libtorch 2.10), fp32", RunTorch),
    ("ONNX Runtime 1.31.1, fp32", () => RunOrt(ortFp32)),
    ("ONNX Runtime 1.31.1, int8 dynamic", () => RunOrt(ortInt8)),
};

// Agreement first: the benchmark times the same function in every engine.
float[] reference = RunTorch();
foreach (var (name, run) in engines.Skip(1))
{
    float[] got = run();
    double maxDiff = got.Zip(reference, (a, b) => Math.Abs(a - b)).Max();
    double cos = got.Zip(reference, (a, b) => (double)a * b).Sum() / Math.Sqrt(got.Sum(a => (double)a * a) * reference.Sum(b => (double)b * b));
    Console.WriteLine($"{name}: max |diff| to TorchSharp {maxDiff:g3}, cosine {cos:F6}");
}

foreach (var (_, run) in engines) for (int i = 0; i < opt.Warmup; i++) run();
var times = engines.Select(_ => new List<double>()).ToArray();
// CPU time of the process per run: the work an engine does, which load from other processes
// inflates far less than wall time (spin-waiting threads count too, so it is an upper bound).
var cpu = new double[engines.Length];
using var self = Process.GetCurrentProcess();
for (int done = 0; done < opt.Runs; done += opt.Block)
    for (int e = 0; e < engines.Length; e++)
    {
        self.Refresh();
        var c0 = self.TotalProcessorTime;
        for (int i = 0; i < opt.Block && done + i < opt.Runs; i++)
        {
            long t0 = Stopwatch.GetTimestamp();
            engines[e].Run();
            times[e].Add(Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
        }
        self.Refresh();
        cpu[e] += (self.TotalProcessorTime - c0).TotalMilliseconds;
    }

Console.WriteLine();
Console.WriteLine($"{opt.Preset} at {cfg.ImageSize} px, batch {opt.Batch}, {opt.Threads} threads, {opt.Runs} runs each (after {opt.Warmup} warm-up), engines alternating in blocks of {opt.Block}");
Console.WriteLine($"spin-waiting: ONNX Runtime {(opt.Passive ? "off" : "on (default)")}, OMP_WAIT_POLICY={Environment.GetEnvironmentVariable("OMP_WAIT_POLICY") ?? "(unset)"}");
Console.WriteLine($"ONNX files: fp32 {fp32.Length / 1048576.0:F1} MiB, int8 {int8.Length / 1048576.0:F1} MiB; load average at the end: {LoadAverage()}");
Console.WriteLine();
Console.WriteLine("| engine | median ms | p10 ms | p90 ms | median vs TorchSharp | CPU ms per run |");
Console.WriteLine("| --- | --- | --- | --- | --- | --- |");
double torchMedian = Percentile(times[0], 0.5);
for (int e = 0; e < engines.Length; e++)
{
    double med = Percentile(times[e], 0.5);
    Console.WriteLine($"| {engines[e].Name} | {med:F2} | {Percentile(times[e], 0.1):F2} | {Percentile(times[e], 0.9):F2} | {torchMedian / med:F2}x | {cpu[e] / times[e].Count:F1} |");
}

static double Percentile(List<double> values, double q)
{
    var s = values.Order().ToArray();
    double pos = q * (s.Length - 1);
    int lo = (int)Math.Floor(pos), hi = (int)Math.Ceiling(pos);
    return s[lo] + (s[hi] - s[lo]) * (pos - lo);
}

static string LoadAverage() =>
    File.Exists("/proc/loadavg") ? string.Join(" ", File.ReadAllText("/proc/loadavg").Split(' ').Take(3)) : "n/a";

sealed record Args(string Preset, int ImageSize, int Batch, int Threads, int Runs, int Block, int Warmup, bool Passive)
{
    public static Args Parse(string[] a)
    {
        string Get(string name, string fallback)
        {
            int i = Array.IndexOf(a, name);
            return i >= 0 && i + 1 < a.Length ? a[i + 1] : fallback;
        }
        var known = new[] { "--preset", "--image-size", "--batch", "--threads", "--runs", "--block", "--warmup", "--passive" };
        foreach (var s in a.Where(s => s.StartsWith("--", StringComparison.Ordinal) && !known.Contains(s)))
            throw new ArgumentException($"unknown option {s}; known: {string.Join(", ", known)}");
        return new Args(Get("--preset", "vit_tiny_patch16"), int.Parse(Get("--image-size", "224")), int.Parse(Get("--batch", "1")),
            int.Parse(Get("--threads", "2")), int.Parse(Get("--runs", "200")), int.Parse(Get("--block", "10")), int.Parse(Get("--warmup", "20")),
            a.Contains("--passive"));
    }
}
