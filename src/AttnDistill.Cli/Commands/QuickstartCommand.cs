using System.CommandLine;
using System.Diagnostics;
using AttnDistill.Distillation;
using AttnDistill.Evaluation;
using AttnDistill.Models;
using AttnDistill.Pretraining;
using AttnDistill.Training;
using AttnDistill.Visualization;

namespace AttnDistill.Cli.Commands;

/// <summary>
/// `attndistill quickstart`: the whole method, small, on a real data set: pre-train a tiny MAE
/// teacher, distill a feature-only student (lambda 0) and an AttnDistill student (lambda 0.1),
/// and compare all three by k-NN and a linear probe on cached features.
/// </summary>
public static class QuickstartCommand
{
    public const string FashionMnistPath = "/usr/share/datasets/fashion-mnist";

    public static Command Create()
    {
        var cmd = new Command("quickstart", "Pre-train a tiny MAE teacher, distill two students (lambda 0 and 0.1) and compare them by k-NN and linear probing, on CIFAR-10 (--data) or Fashion-MNIST.");
        var data = new Option<string?>("--data") { Description = "Data root (ImageFolder with train/ and test/, e.g. CIFAR-10 JPEGs); default $ATTNDISTILL_DATA, else Debian's Fashion-MNIST." };
        var outDir = new Option<string>("--out") { Description = "Run folder.", DefaultValueFactory = _ => "runs/quickstart" };
        var epochs = TrainerOptionSet.Positive("--epochs", "Epochs of the teacher and of each student.", 4);
        var seed = new Option<int>("--seed") { Description = "Seed of every run.", DefaultValueFactory = _ => 0 };
        foreach (var o in new Option[] { data, outDir, epochs, seed }) cmd.Options.Add(o);
        cmd.SetAction((parsed, ct) => Run.Guarded(parsed, ct, stop =>
        {
            string root = FindData(parsed.GetValue(data));
            string outRoot = parsed.GetValue(outDir)!;
            int e = parsed.GetValue(epochs), s = parsed.GetValue(seed);
            Run.PrepareOutDir(outRoot, parsed, null, "cpu");
            var probe = Data.DatasetFactory.Open(root, Data.DataSplit.Train);
            // Fashion-MNIST (28 px) uses patch 4 for the teacher and 7 for the students; CIFAR-10 (32 px) 4 and 8.
            int size = probe.Count > 0 && probe.Load(0).Width == 28 ? 28 : 32;
            int studentPatch = size == 28 ? 7 : 8;
            var watch = Stopwatch.StartNew();
            ConsoleReporting.Info($"data: {root} ({probe.Count} training images), image size {size}");

            // Each sub-run gets its own config.yaml (what `report` reads to tell the runs apart).
            string SubRun(string name, string yaml)
            {
                string dir = Path.Combine(outRoot, name);
                Directory.CreateDirectory(dir);
                File.WriteAllText(Path.Combine(dir, "config.yaml"), $"# attndistill quickstart: {name}\n{yaml}seed: {s}\nepochs: {e}\nimage-size: {size}\n");
                return dir;
            }
            int Stopped(string after)
            {
                ConsoleReporting.Info($"stopped after {after}; rerun the quickstart to start again.");
                return Run.InterruptedExitCode;
            }

            var teacherVit = new VitConfig { ImageSize = size, PatchSize = 4, EmbedDim = 96, Depth = 4, NumHeads = 3, PosEmbed = PosEmbedKind.SinCos };
            var mae = ConsoleReporting.WithTrainingProgress("MAE teacher", p => MaePretrainJob.Run(new MaePretrainJobConfig
            {
                DataRoot = root, Mae = MaeConfig.For(teacherVit),
                Trainer = new TrainerOptions { Epochs = e, WarmupEpochs = 1, BatchSize = 128, Lr = 1.5e-3, Seed = s, LogEverySteps = 50 },
                OutDir = SubRun("teacher", "model: vit 4 x 96, 3 heads, patch 4 (MAE, sin-cos PE)\nmask-ratio: 0.75\n"),
            }, "quickstart teacher", progress: p, log: ConsoleReporting.Info, stop: stop));
            if (stop.IsCancellationRequested) return Stopped("the teacher");

            var rows = new List<(string Name, string Checkpoint)> { ("MAE teacher (ViT 4x96, patch 4)", mae.TeacherPath) };
            foreach (var lambda in new[] { 0.0, 0.1 })
            {
                string name = lambda == 0 ? "student, features only (lambda 0)" : "student, AttnDistill (lambda 0.1)";
                var student = new VitConfig { ImageSize = size, PatchSize = studentPatch, EmbedDim = 48, Depth = 4, NumHeads = 3, PosEmbed = PosEmbedKind.SinCos };
                var result = ConsoleReporting.WithTrainingProgress(name, p => DistillJob.Run(new DistillJobConfig
                {
                    DataRoot = root, TeacherPath = mae.TeacherPath, Student = student, ProjectorLayers = 2,
                    Loss = new DistillLossOptions { WeightAttn = lambda, AttnTemperature = 10 },
                    Trainer = new TrainerOptions { Epochs = e, WarmupEpochs = 1, BatchSize = 128, Lr = 1e-3, Seed = s, LogEverySteps = 50 },
                    OutDir = SubRun(lambda == 0 ? "student-lambda0" : "student-lambda0.1",
                        $"student: vit 4 x 48, 3 heads, patch {studentPatch}\nproj-layers: 2\nweight-attn: {lambda}\nattn-T: 10\naggregation: product\n"),
                }, $"quickstart student lambda {lambda}", progress: p, log: ConsoleReporting.Info, stop: stop));
                if (stop.IsCancellationRequested) return Stopped(name);
                rows.Add((name, result.BackboneSafetensors));
            }

            var table = new List<(string, string)>();
            var summary = new List<object>();
            string cache = Path.Combine(outRoot, "feature-cache");      // k-NN and the probe share one feature pass
            foreach (var (name, ckpt) in rows)
            {
                string runDir = Path.GetDirectoryName(ckpt)!;
                var knn = ConsoleReporting.WithStageProgress($"k-NN {name}", p => KnnJob.Run(new KnnJobConfig
                {
                    Checkpoint = ckpt, DataRoot = root, ImageSize = size, OutDir = Path.Combine(runDir, "knn"), Ks = new[] { 20 }, FeatureCacheDir = cache,
                }, ConsoleReporting.Info, p, stop));
                var linear = ConsoleReporting.WithStageProgress($"linear probe {name}", p => LinearJob.Run(new LinearJobConfig
                {
                    Checkpoint = ckpt, DataRoot = root, ImageSize = size, OutDir = Path.Combine(runDir, "linear"), Augment = false, FeatureCacheDir = cache,
                    Trainer = new TrainerOptions { Epochs = 20, WarmupEpochs = 2, BatchSize = 256, Seed = s }, BaseLrs = new[] { 1.0, 10.0, 100.0 },
                }, log: ConsoleReporting.Info, progress: p, stop: stop));
                table.Add((name, $"k-NN (k=20) top-1 {knn[0].Top1:F2} %, linear top-1 {linear.Best.Top1:F2} %"));
                summary.Add(new
                {
                    model = name, checkpoint = ckpt, knn_k20_top1 = knn[0].Top1, knn_k20_top5 = knn[0].Top5,
                    linear_top1 = linear.Best.Top1, linear_top5 = linear.Best.Top5, linear_base_lr = linear.Best.BaseLr,
                });
            }
            if (Distributed.DistributedContext.LaunchRank == 0) MetricsFile.Merge(Path.Combine(outRoot, "metrics.json"), "quickstart", summary);

            // Figures 9-11 for one test image of every class, then the report (tables and plots).
            var panels = AttentionPanels.Render(new NamedCheckpoint("MAE teacher", mae.TeacherPath),
                rows.Skip(1).Select(r => new NamedCheckpoint(r.Name.Contains("lambda 0)") ? "lambda 0" : "AttnDistill", r.Checkpoint)).ToList(),
                AttentionPanels.PerClass(root, 1), Path.Combine(outRoot, "attention"),
                new AttentionPanelOptions { Loss = new DistillLossOptions { AttnTemperature = 10 }, ImageSize = size }, ConsoleReporting.Info, stop);
            var meanKl = Enumerable.Range(0, 2).Select(i => panels.Average(p => p.KlToTeacher[i])).ToArray();
            var report = RunReport.Write(rows.Select(r => Path.GetDirectoryName(r.Checkpoint)!), Path.Combine(outRoot, "report"), ConsoleReporting.Info);
            table.Add(("attention KL to teacher (mean)", $"lambda 0: {meanKl[0]:G3}, AttnDistill: {meanKl[1]:G3} ({panels.Count} panels in {Path.Combine(outRoot, "attention")})"));
            table.Add(("report", report.MarkdownPath));
            table.Add(("wall time", $"{watch.Elapsed.TotalMinutes:F1} min"));
            ConsoleReporting.Summary("quickstart", table);
            return 0;
        }));
        return cmd;
    }

    /// <summary>--data, then $ATTNDISTILL_DATA, then Debian's Fashion-MNIST (installed with apt when running as root).</summary>
    static string FindData(string? given)
    {
        if (!string.IsNullOrEmpty(given)) return given;
        if (Environment.GetEnvironmentVariable("ATTNDISTILL_DATA") is { Length: > 0 } env) return env;
        if (File.Exists(Path.Combine(FashionMnistPath, "train-images-idx3-ubyte.gz"))) return FashionMnistPath;
        if (OperatingSystem.IsLinux() && Environment.UserName == "root" && File.Exists("/usr/bin/apt-get"))
        {
            ConsoleReporting.Info("Fashion-MNIST is missing: installing Debian's dataset-fashion-mnist with apt-get ...");
            using var apt = Process.Start(new ProcessStartInfo("apt-get", "install -y dataset-fashion-mnist") { RedirectStandardOutput = true })!;
            apt.StandardOutput.ReadToEnd();
            apt.WaitForExit();
            if (File.Exists(Path.Combine(FashionMnistPath, "train-images-idx3-ubyte.gz"))) return FashionMnistPath;
        }
        throw new DirectoryNotFoundException(
            $"no data set found: pass --data ROOT (an ImageFolder such as CIFAR-10 JPEGs with train/ and test/), set ATTNDISTILL_DATA, or install Fashion-MNIST (sudo apt-get install dataset-fashion-mnist).");
    }
}
