// Soak and long-run checks of issues 11 and 22 (reliability, hostile inputs), too long for the test suite:
//   fuzz         [cases=2500] [seed=1]         mutated, structurally lying and crafted checkpoints through every loader and --resume
//   fuzz-images  [cases=2500] [seed=1] [budget=1048576]  images whose headers lie through the decoder
//   fuzz-recipes [cases=2500] [seed=1]         hostile YAML recipes through the CLI's entry point (in process)
//   kill      [kills=12] [images=2048] [epochs=6]  SIGKILL/SIGTERM/SIGINT the real CLI, resume, compare weights
//   long-run  [steps=3000] [images=6400] [--trim-samples]  RSS and step time of a small distillation, every 250 steps
// Run: dotnet run --project bench/soak -c Release -- <verb> [args]   (see bench/soak/README.md)
using System.Diagnostics;
using System.Globalization;
using AttnDistill.Distillation;
using AttnDistill.Models;
using AttnDistill.Soak;
using AttnDistill.Tests.Reliability;
using AttnDistill.Tests.TestSupport;
using AttnDistill.Training;

string verb = args.Length > 0 ? args[0] : "";
int Arg(int i, int fallback) => args.Length > i && int.TryParse(args[i], CultureInfo.InvariantCulture, out int v) ? v : fallback;
string work = Directory.CreateTempSubdirectory("soak-" + verb).FullName;
Console.WriteLine($"work folder: {work}");

switch (verb)
{
    case "fuzz":
    {
        int cases = Arg(1, 2500), seed = Arg(2, 1);
        string fixtures = Path.Combine(AppContext.BaseDirectory, "fixtures");
        using var crafted = new CraftedCheckpoints(ResumeProbe.WriteSeed(Path.Combine(work, "seed-run")));
        var seeds = CheckpointFuzzer.ExtendedSeeds(fixtures, CheckpointFuzzer.TrainingCheckpointSeed(work), crafted);
        return Report(CheckpointFuzzer.Run(seeds, cases, seed, Path.Combine(work, "cases"), TimeSpan.FromSeconds(30), Console.WriteLine));
    }
    case "fuzz-images":
    {
        int cases = Arg(1, 2500), seed = Arg(2, 1), budget = Arg(3, 1 << 20);
        return Report(ImageFuzzer.Run(cases, seed, Path.Combine(work, "cases"), budget, TimeSpan.FromSeconds(30), Console.WriteLine));
    }
    case "fuzz-recipes":
    {
        int cases = Arg(1, 2500), seed = Arg(2, 1);
        string teacher = KillHarness.MakeTeacher(work);
        return Report(RecipeFuzzer.Run(cases, seed, Path.Combine(work, "cases"), teacher, InProcessCli.Run, TimeSpan.FromSeconds(30), Console.WriteLine));
    }
    case "kill":
    {
        if (!FashionMnistSlice.Available) { Console.WriteLine($"needs Fashion-MNIST at {FashionMnistSlice.Root}"); return 2; }
        var outcome = new KillHarness(new KillHarness.Settings
        {
            CliDll = Path.Combine(AppContext.BaseDirectory, "attndistill.dll"), WorkDir = work,
            Kills = Arg(1, 12), Images = Arg(2, 2048), Epochs = Arg(3, 6), BatchSize = 32, Signals = 2, MidWriteEvery = 3,
            Log = Console.WriteLine,
        }).Run();
        Console.WriteLine(outcome);
        foreach (string u in outcome.Unreadable) Console.WriteLine("UNREADABLE " + u);
        return outcome.FinalWeightsEqual && outcome.Unreadable.Count == 0 ? 0 : 1;
    }
    case "long-run":
        return LongRun.Run(Arg(1, 3000), work, Arg(2, 6400), trimSamples: args.Contains("--trim-samples"));
    default:
        Console.WriteLine("verbs: fuzz [cases] [seed] | fuzz-images [cases] [seed] [pixel budget] | fuzz-recipes [cases] [seed] | kill [kills] [images] [epochs] | long-run [steps]");
        return 2;
}

// The report, every failure, exit code 1 on any failure.
static int Report(FuzzReport report)
{
    Console.WriteLine(report);
    foreach (string f in report.Failures) Console.WriteLine("FAIL " + f);
    return report.Failures.Count == 0 ? 0 : 1;
}

namespace AttnDistill.Soak
{
    /// <summary>A small distillation for thousands of steps; RSS and step time sampled every 250 steps.</summary>
    static class LongRun
    {
        const int Every = 250, WarmupSteps = 500, Batch = 32;

        [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "malloc_trim")]
        static extern int MallocTrim(nuint pad);

        /// <param name="images">Training images: fewer means shorter epochs, so more epoch ends and checkpoints per step.</param>
        /// <param name="trimSamples">Also measure RSS after GC + malloc_trim at each sample (which itself frees memory, so the raw curve is no longer what users see).</param>
        public static int Run(int steps, string work, int images, bool trimSamples)
        {
            int Images = images;
            if (!FashionMnistSlice.Available) { Console.WriteLine($"needs Fashion-MNIST at {FashionMnistSlice.Root}"); return 2; }
            int perEpoch = Images / Batch;
            int epochs = (steps + perEpoch - 1) / perEpoch;
            var cfg = new DistillJobConfig
            {
                DataRoot = FashionMnistSlice.Create(Images, work), TeacherPath = KillHarness.MakeTeacher(work),
                Student = new VitConfig { ImageSize = 28, PatchSize = 7, EmbedDim = 32, Depth = 2, NumHeads = 2 }, ProjectorLayers = 2,
                Trainer = new TrainerOptions { Epochs = epochs, WarmupEpochs = 1, BatchSize = Batch, Lr = 1e-3, LogEverySteps = 50, Seed = 0 },
                Workers = 2,
            };
            var rows = new List<(long Step, double RssMiB, double TrimmedMiB, double ManagedMiB, double StepMs, double CpuMs)>();
            var watch = Stopwatch.StartNew();
            var self = Process.GetCurrentProcess();
            double windowStart = 0, cpuStart = self.TotalProcessorTime.TotalMilliseconds;
            long done = 0;
            var progress = new Sync(p =>
            {
                done = p.DoneBatches;
                if (done % Every != 0) return;
                double now = watch.Elapsed.TotalMilliseconds;
                self.Refresh();
                double cpu = self.TotalProcessorTime.TotalMilliseconds;
                double rss = CheckpointFuzzer.RssBytes() / 1048576.0, managed = GC.GetTotalMemory(false) / 1048576.0;
                double trimmed = double.NaN;
                if (Environment.GetEnvironmentVariable("SOAK_DIAG") is { } diag)
                {
                    var info = GC.GetGCMemoryInfo();
                    Console.WriteLine($"  before: live tensors {TorchSharp.torch.Tensor.TotalCount}, GC count {GC.CollectionCount(0)}/{GC.CollectionCount(1)}/{GC.CollectionCount(2)}, committed {info.TotalCommittedBytes / 1048576.0:F1} MiB, heap {info.HeapSizeBytes / 1048576.0:F1} MiB, finalization pending {info.FinalizationPendingCount}");
                    if (diag.Contains("trim")) { MallocTrim(0); Console.WriteLine($"  after trim only: RSS {CheckpointFuzzer.RssBytes() / 1048576.0:F1}"); }
                    if (diag.Contains("gc")) { GC.Collect(); GC.WaitForPendingFinalizers(); GC.Collect(); Console.WriteLine($"  after GC: RSS {CheckpointFuzzer.RssBytes() / 1048576.0:F1}, live tensors {TorchSharp.torch.Tensor.TotalCount}"); }
                    if (diag.Contains("gc") && diag.Contains("trim")) { MallocTrim(0); Console.WriteLine($"  after GC + trim: RSS {CheckpointFuzzer.RssBytes() / 1048576.0:F1}"); }
                }
                if (trimSamples)
                {
                    // What live objects hold: the allocators' free pages handed back.
                    GC.Collect();
                    GC.WaitForPendingFinalizers();
                    MallocTrim(0);
                    trimmed = CheckpointFuzzer.RssBytes() / 1048576.0;
                    Console.WriteLine($"  live tensors {TorchSharp.torch.Tensor.TotalCount}, GC committed {GC.GetGCMemoryInfo().TotalCommittedBytes / 1048576.0:F1} MiB");
                }
                rows.Add((done, rss, trimmed, managed, (now - windowStart) / Every, (cpu - cpuStart) / Every));
                self.Refresh();
                windowStart = watch.Elapsed.TotalMilliseconds;
                cpuStart = self.TotalProcessorTime.TotalMilliseconds;
                Console.WriteLine($"step {done}: RSS {rss:F1} MiB ({trimmed:F1} after GC + malloc_trim), step {rows[^1].StepMs:F1} ms wall, {rows[^1].CpuMs:F1} ms CPU");
            });
            DistillJob.Run(cfg, AttnDistill.Runs.RunContext.Cpu(Path.Combine(work, "run")) with { ConfigText = "long-run", Progress = progress });
            Console.WriteLine();
            Console.WriteLine($"{done} steps in {watch.Elapsed.TotalMinutes:F1} min (epochs of {perEpoch} steps, a checkpoint after each)");
            Console.WriteLine("| step | RSS (MiB) | RSS after GC + malloc_trim (MiB) | managed heap (MiB) | wall ms / step (last 250) | CPU ms / step (last 250) |");
            Console.WriteLine("| ---: | ---: | ---: | ---: | ---: | ---: |");
            foreach (var r in rows) Console.WriteLine($"| {r.Step} | {r.RssMiB:F1} | {r.TrimmedMiB:F1} | {r.ManagedMiB:F1} | {r.StepMs:F1} | {r.CpuMs:F1} |");
            var after = rows.Where(r => r.Step >= WarmupSteps).ToList();
            if (after.Count < 2) return 0;
            double rssGrowth = (after.Max(r => r.RssMiB) - after[0].RssMiB) / after[0].RssMiB;
            double lastVsFirst = after[^1].RssMiB / after[0].RssMiB - 1;
            double firstHalf = after.Take(after.Count / 2).Average(r => r.CpuMs), secondHalf = after.Skip(after.Count / 2).Average(r => r.CpuMs);
            Console.WriteLine();
            double trimmedGrowth = trimSamples ? (after.Max(r => r.TrimmedMiB) - after[0].TrimmedMiB) / after[0].TrimmedMiB : double.NaN;
            Console.WriteLine($"after warm-up (step {WarmupSteps}): peak RSS growth {rssGrowth:P1}, last vs first {lastVsFirst:P1}, after trim {trimmedGrowth:P1}; " +
                              $"CPU ms / step, second half over first half: {secondHalf / firstHalf:F2}; wall ms / step from {after.Min(r => r.StepMs):F0} to {after.Max(r => r.StepMs):F0}");
            return rssGrowth < 0.05 ? 0 : 1;
        }

        sealed class Sync(Action<TrainProgress> report) : AttnDistill.Runs.IRunProgress
        {
            public void Training(TrainProgress value) => report(value);
            public void Stage(string stage, int done, int total) { }
        }
    }
}
