using System.Diagnostics;
using System.Globalization;
using AttnDistill.Distributed;
using AttnDistill.Models;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

// Data-parallel benchmarks. Run under mpirun (one line of results from rank 0):
//   mpirun -np 2 dotnet AttnDistill.Bench.Mpi.dll allreduce [--model vit_tiny_patch16] [--iters 30]
//   mpirun -np 2 dotnet AttnDistill.Bench.Mpi.dll step --model vit_tiny_patch16 --image-size 224 --batch 8 [--steps 10]
//   dotnet AttnDistill.Bench.Mpi.dll step --model vit_tiny_patch16 --image-size 224 --batch 16 --threads 2
// Batch sizes are per process: 2 ranks x batch 8 and 1 process x batch 16 do the same work per step.

var opts = Options.Parse(args.Skip(1));
var dist = DistributedContext.FromEnvironment(CPU);
if (opts.Threads is { } t) set_num_threads(t);
try
{
    switch (args.FirstOrDefault())
    {
        case "allreduce": AllReduce(dist, opts); break;
        case "step": Step(dist, opts); break;
        default:
            Console.Error.WriteLine("usage: AttnDistill.Bench.Mpi allreduce|step [--model NAME] [--image-size S] [--batch B] [--threads N] [--iters N] [--steps N]");
            return 2;
    }
}
finally
{
    DistributedContext.Shutdown();
}
return 0;

// All-reduce of a ViT's gradients through the flat buffer, for several bucket sizes, plus one raw MPI_Allreduce of the whole buffer.
static void AllReduce(IDistributedContext dist, Options o)
{
    manual_seed(0);
    using var model = new VisionTransformer(VitPresets.Get(o.Model));
    var ps = model.parameters().ToArray();
    foreach (var p in ps) p.grad = randn_like(p);
    long floats = ps.Sum(p => p.NumberOfElements);
    Report(dist, $"model {o.Model}: {ps.Length} tensors, {floats:N0} floats ({floats * 4 / 1e6:F1} MB); {dist.WorldSize} ranks, {get_num_threads()} thread(s) each");
    foreach (double mb in new[] { 1.0, 4.0, 25.0, 1e6 })
    {
        using var buckets = new GradientBuckets(ps, (long)(mb * (1 << 20)));
        var times = Timed(o.Iters, () => buckets.Average(dist.SumInPlace, dist.WorldSize));
        string name = mb >= 1e6 ? "one bucket" : $"{mb:G} MB buckets";
        Report(dist, Line($"flat buffer, {name} ({buckets.Buckets.Count} all-reduces)", times, floats * 4L, dist.WorldSize));
    }
    // The all-reduce alone, without the flags and the 1/world scaling.
    using var flat = randn(floats);
    Report(dist, Line("raw MPI_Allreduce of one float32 buffer", Timed(o.Iters, () => dist.SumInPlace(flat)), floats * 4L, dist.WorldSize));
}

// A training step: ViT forward + linear-head cross-entropy, backward, gradient average, AdamW.
static void Step(IDistributedContext dist, Options o)
{
    manual_seed(0);
    var cfg = VitPresets.Get(o.Model) with { ImageSize = o.ImageSize, PatchSize = o.Patch ?? VitPresets.Get(o.Model).PatchSize };
    using var vit = new VisionTransformer(cfg);
    using var head = nn.Linear(cfg.EmbedDim, 10);
    var ps = vit.parameters().Concat(head.parameters()).ToArray();
    dist.Broadcast(ps.Select(p => (Tensor)p).ToArray());
    var opt = optim.AdamW(ps, 1e-4);
    manual_seed(1 + dist.Rank);
    using var images = randn(o.Batch, 3, o.ImageSize, o.ImageSize);
    using var labels = randint(10, new long[] { o.Batch }, dtype: ScalarType.Int64);
    var reduce = new List<double>();
    var times = Timed(o.Steps, () =>
    {
        using var scope = NewDisposeScope();
        var loss = nn.functional.cross_entropy(head.forward(vit.forward(images)), labels);
        loss.backward();
        var w = Stopwatch.StartNew();
        dist.AverageGradients(ps);
        reduce.Add(w.Elapsed.TotalMilliseconds);
        opt.step();
        opt.zero_grad();
    }, warmup: 2);
    double median = Median(times);
    reduce.RemoveRange(0, Math.Min(2, reduce.Count));
    int globalBatch = o.Batch * dist.WorldSize;
    Report(dist, string.Create(CultureInfo.InvariantCulture,
        $"step {o.Model} image {o.ImageSize} patch {cfg.PatchSize}: {dist.WorldSize} rank(s) x {get_num_threads()} thread(s) x batch {o.Batch} (global {globalBatch}): " +
        $"median {median:F1} ms/step (min {times.Min():F1}), {globalBatch / (median / 1000):F1} images/s, gradient average {Median(reduce):F1} ms ({100 * Median(reduce) / median:F1} % of the step)"));
}

static List<double> Timed(int iters, Action work, int warmup = 3)
{
    var times = new List<double>();
    for (int i = 0; i < warmup + iters; i++)
    {
        var w = Stopwatch.StartNew();
        work();
        if (i >= warmup) times.Add(w.Elapsed.TotalMilliseconds);
    }
    return times;
}

static double Median(List<double> xs)
{
    var s = xs.Order().ToArray();
    return s.Length == 0 ? double.NaN : s.Length % 2 == 1 ? s[s.Length / 2] : (s[s.Length / 2 - 1] + s[s.Length / 2]) / 2;
}

// Bus bandwidth as nccl-tests defines it for all-reduce: 2 (n - 1) / n x bytes / time.
static string Line(string what, List<double> ms, long bytes, int world)
{
    double med = Median(ms);
    double bus = 2.0 * (world - 1) / world * bytes / (med / 1000) / 1e9;
    return string.Create(CultureInfo.InvariantCulture, $"{what}: median {med:F2} ms (min {ms.Min():F2}, max {ms.Max():F2}), bus bandwidth {bus:F2} GB/s");
}

static void Report(IDistributedContext dist, string line)
{
    if (dist.IsMain) Console.WriteLine(line);
}

sealed record Options(string Model, int ImageSize, int? Patch, int Batch, int? Threads, int Iters, int Steps)
{
    public static Options Parse(IEnumerable<string> args)
    {
        var d = new Dictionary<string, string>();
        var list = args.ToList();
        for (int i = 0; i + 1 < list.Count; i += 2) d[list[i].TrimStart('-')] = list[i + 1];
        int? Int(string k) => d.TryGetValue(k, out var v) ? int.Parse(v, CultureInfo.InvariantCulture) : null;
        return new Options(d.GetValueOrDefault("model", "vit_tiny_patch16"), Int("image-size") ?? 224, Int("patch"), Int("batch") ?? 8,
            Int("threads"), Int("iters") ?? 30, Int("steps") ?? 10);
    }
}
