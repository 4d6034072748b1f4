using System.CommandLine;
using System.Text.Json;
using AttnDistill.Benchmarks;

namespace AttnDistill.Cli.Commands;

/// <summary>`attndistill bench`: training, MAE, k-NN and inference throughput as a fraction of the machine's matmul FLOP/s.</summary>
public static class BenchCommand
{
    public static Command Create()
    {
        var cmd = new Command("bench", "Time the workloads (distillation steps, MAE step, k-NN, feature extraction) in fp32 and bf16 against the fp32/bf16 matmul FLOP/s measured first; prints medians and writes JSON.");
        var workloads = new Option<string[]>("--workloads") { Description = $"Workloads to run, separated by spaces or commas: {string.Join(", ", BenchOptions.AllWorkloads)} (default: all; none: only the matmul bar and --data).", AllowMultipleArgumentsPerToken = true };
        var repeats = TrainerOptionSet.Positive("--repeats", "Timed runs of every variant (variants alternate).", 5);
        var warmup = new Option<int>("--warmup") { Description = "Untimed runs of every variant first.", DefaultValueFactory = _ => 1 };
        var matmulRepeats = TrainerOptionSet.Positive("--matmul-repeats", "Timed runs of the matmul bar.", 10);
        var noLevers = new Option<bool>("--no-levers") { Description = "Time only fp32 and bf16, not the lever variants (explicit attention, bf16 teacher only, inference_mode, k-NN chunk 1024)." };
        var noMemory = new Option<bool>("--no-memory") { Description = "Skip the peak-memory measurement of distill-224." };
        var quietLoad = TrainerOptionSet.PositiveDouble("--quiet-load", "Before each workload wait until the 1-minute load average is below this...", 2.5);
        var maxWait = new Option<double>("--max-wait") { Description = "...but at most this many minutes (0: do not wait).", DefaultValueFactory = _ => 10 };
        var threads = new Option<int?>("--threads") { Description = "libtorch intra-op threads (default: libtorch's choice, the core count)." };
        var scale = new Option<string>("--scale") { Description = "paper: the issue's shapes; tiny: seconds-long shapes (smoke test).", DefaultValueFactory = _ => "paper" };
        scale.AcceptOnlyFromAmong("paper", "tiny");
        var json = new Option<string?>("--json") { Description = "Write every timing (with load averages) to this JSON file." };
        var data = new Option<string[]>("--data") { Description = "Also time our data loader (RandomResizedCrop 224 + flip + normalize) on these folders' train/ split, and torchvision's on the same files (python3 with torchvision, e.g. Debian's python3-torchvision).", AllowMultipleArgumentsPerToken = true, DefaultValueFactory = _ => Array.Empty<string>() };
        var dataWorkers = new NumberListOption<int>("--data-workers", "Loader thread counts for --data, each timed:", new[] { 1, 2 });
        var noTorchvision = new Option<bool>("--no-torchvision") { Description = "Time only our loader for --data, not torchvision's." };
        var seed = new Option<int>("--seed") { Description = "Seed of weights and inputs.", DefaultValueFactory = _ => 0 };
        var suite = new Option<string>("--suite") { Description = "workloads: the timings above; device-check: the GPU check of scripts/gpu-check.sh (matmul bar, bf16 distillation steps with their first-step loss against fp32 on the CPU, k-NN, ONNX export) on --device.", DefaultValueFactory = _ => "workloads" };
        suite.AcceptOnlyFromAmong("workloads", "device-check");
        var device = Run.DeviceOption();
        device.Description = "cpu, cuda or cuda:N: where device-check runs; the workloads suite times the CPU only (another device is refused).";
        var small = new Option<bool>("--small") { Description = "device-check only: small shapes (image 32, patch 8, depth 2, batch 8, 3 steps) instead of ViT-S/16 -> ViT-T/16 at 224, batch 128, 30 steps." };
        var outDir = new Option<string>("--out") { Description = "device-check only: folder for the exported ONNX student.", DefaultValueFactory = _ => "runs/device-check" };
        foreach (var o in new Option[] { workloads, repeats, warmup, matmulRepeats, noLevers, noMemory, quietLoad, maxWait, threads, scale, json, data, dataWorkers, noTorchvision, seed, suite, device, small, outDir }) cmd.Options.Add(o);
        cmd.SetAction((parsed, ct) => Run.Guarded(parsed, ct, stop =>
        {
            if (parsed.GetValue(threads) is { } n) TorchSharp.torch.set_num_threads(n);
            if (parsed.GetValue(suite) == "device-check")
                return DeviceCheckOutput.Run(parsed.GetValue(device)!, parsed.GetValue(small), parsed.GetValue(outDir)!, parsed.GetValue(json), parsed.GetValue(seed));
            // The workload suite times this machine's CPU against its own matmul bar: never a silent CPU run for another device.
            var asked = AttnDistill.Runs.RunDevice.Resolve(parsed.GetValue(device)!, AttnDistill.Distributed.DistributedContext.LaunchLocalRank);
            if (asked.type != TorchSharp.DeviceType.CPU)
                throw new ArgumentException($"--device {parsed.GetValue(device)}: the workloads suite times the CPU; use --suite device-check to time {AttnDistill.Runs.RunDevice.Name(asked)}.");
            var options = new BenchOptions
            {
                Workloads = (parsed.GetValue(workloads) is { Length: > 0 } given ? given.SelectMany(w => w.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)) : BenchOptions.AllWorkloads).Where(w => w != "none").ToArray(), Repeats = parsed.GetValue(repeats), Warmup = parsed.GetValue(warmup),
                MatmulRepeats = parsed.GetValue(matmulRepeats), Levers = !parsed.GetValue(noLevers), Memory = !parsed.GetValue(noMemory),
                QuietLoad = parsed.GetValue(quietLoad), MaxWait = TimeSpan.FromMinutes(parsed.GetValue(maxWait)),
                Shapes = parsed.GetValue(scale) == "tiny" ? BenchShapes.Tiny : BenchShapes.Paper, Seed = parsed.GetValue(seed),
                DataRoots = parsed.GetValue(data)!, DataWorkers = dataWorkers.Read(parsed), TorchvisionReference = !parsed.GetValue(noTorchvision),
            }.Validate();
            string command = "attndistill " + string.Join(" ", Environment.GetCommandLineArgs().Skip(1));
            var report = BenchSuite.Run(options, command, ConsoleReporting.Info, stop);
            Print(report);
            if (parsed.GetValue(json) is { } path)
            {
                if (Path.GetDirectoryName(Path.GetFullPath(path)) is { } dir) Directory.CreateDirectory(dir);
                File.WriteAllText(path, JsonSerializer.Serialize(report, new JsonSerializerOptions { WriteIndented = true }));
                ConsoleReporting.Info($"wrote {path}");
            }
            return 0;
        }));
        return cmd;
    }

    static void Print(BenchReport r)
    {
        // A Markdown table: readable in a terminal, pasted as is into docs/RESULTS.md.
        Console.WriteLine($"libtorch {r.Libtorch}, {r.Threads} threads, {r.Cores} cores, {r.Date}; matmul {r.MatmulFp32.Flops / 2:E1} MACs: fp32 {r.MatmulFp32.FlopsPerSecond / 1e9:F1} GFLOP/s, bf16 {r.MatmulBf16.FlopsPerSecond / 1e9:F1} GFLOP/s (load {r.MatmulFp32.MedianLoad:F2})");
        Console.WriteLine();
        Console.WriteLine("| workload | variant | median s | min s | img/s | GFLOP/run | GFLOP/s | of fp32 mm | of bf16 mm | of fp32 bar | best of bar | load |");
        Console.WriteLine("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
        foreach (var row in r.Rows)
        {
            var t = row.Timing;
            string Rate(string s) => t.Flops > 0 ? s : "-";   // overhead cases (optimizer, loss) have no matmul count
            Console.WriteLine($"| {t.Workload} | {t.Variant} | {t.MedianSeconds:F3} | {t.MinSeconds:F3} | {Rate($"{t.ItemsPerSecond:F1}")} | {Rate($"{t.Flops / 1e9:F1}")} | {Rate($"{t.FlopsPerSecond / 1e9:F1}")} | {Rate($"{row.FractionOfFp32Matmul:P0}")} | {Rate($"{row.FractionOfBf16Matmul:P0}")} | {Rate($"{row.FractionOfInterleavedFp32Matmul:P0}")} | {Rate($"{row.BestFractionOfInterleavedFp32Matmul:P0}")} | {t.MedianLoad:F2} |");
        }
        Console.WriteLine();
        if (r.Data.Count > 0)
        {
            Console.WriteLine("| data (train/, RandomResizedCrop 224 + flip + normalize) | workers | images/s | torchvision images/s | ratio | load |");
            Console.WriteLine("| --- | ---: | ---: | ---: | ---: | ---: |");
        }
        foreach (var d in r.Data)
        {
            string tv = d.Torchvision is { ImagesPerSecond: { } v } ? $"{v:F0} | {d.MedianImagesPerSecond / v:F2}x" : $"{d.Torchvision?.Note ?? "-"} | -";
            Console.WriteLine($"| {d.Root} | {d.Workers} | {d.MedianImagesPerSecond:F0} | {tv} | {d.MedianLoad:F2} |");
        }
        Console.WriteLine();
        foreach (var m in r.Memory)
            Console.WriteLine($"peak memory {m.Workload} {m.Variant}: {m.PeakAboveBaselineBytes / 1e6:F0} MB above the {m.BaselineBytes / 1e6:F0} MB baseline " +
                $"(after build {(m.PeakAfterBuildBytes - m.BaselineBytes) / 1e6:F0}, after step 1 {(m.PeakAfterFirstStepBytes - m.BaselineBytes) / 1e6:F0}); " +
                $"analytic {m.Analytic.Total / 1e6:F0} MB = params {m.Analytic.Parameters / 1e6:F0} + grads {m.Analytic.Gradients / 1e6:F0} + AdamW {m.Analytic.OptimizerState / 1e6:F0} + activations {m.Analytic.Activations / 1e6:F0} + inputs {m.Analytic.Inputs / 1e6:F0}; " +
                $"ratio {m.RatioToAnalytic:F2} (load {m.Load:F2})");
    }
}
