using System.CommandLine;
using System.Diagnostics;
using AttnDistill.Evaluation;
using AttnDistill.Training;
using AttnDistill.Workflows;

namespace AttnDistill.Cli.Commands;

/// <summary>
/// `attndistill quickstart`: parses its options, finds the data and prints the summary; the
/// workflow itself is <see cref="Quickstart"/>.
/// </summary>
public static class QuickstartCommand
{
    public const string FashionMnistPath = "/usr/share/datasets/fashion-mnist";

    public static Command Create()
    {
        var cmd = new Command("quickstart", "Distill two students (lambda 0 and 0.1) from a teacher (--teacher, else the committed reference teacher, else a tiny MAE pre-trained here) and compare pixel floor, teacher and students by k-NN and linear probing, on Fashion-MNIST or --data (e.g. CIFAR-10).");
        var data = new Option<string?>("--data") { Description = "Data root (ImageFolder with train/ and test/, e.g. CIFAR-10 JPEGs); default $ATTNDISTILL_DATA, else Debian's Fashion-MNIST." };
        var outDir = new Option<string>("--out") { Description = "Run folder.", DefaultValueFactory = _ => "runs/quickstart" };
        var epochs = TrainerOptionSet.Positive("--epochs", "Epochs of each student (and of a teacher pre-trained here, unless --teacher-epochs).", 4);
        var teacherEpochs = new Option<int?>("--teacher-epochs") { Description = "Epochs of the MAE teacher pre-trained here (default: --epochs)." };
        var seed = new Option<int>("--seed") { Description = "Seed of every run.", DefaultValueFactory = _ => 0 };
        var teacher = new Option<string?>("--teacher") { Description = "Teacher checkpoint to distill from (.safetensors/.pth, any ViT the other commands read); default: the committed reference teacher models/<data>-dino-*.safetensors when present, else a tiny MAE pre-trained here." };
        var trainTeacher = new Option<bool>("--train-teacher") { Description = "Pre-train the teacher here (tiny MAE) even when a reference teacher is committed." };
        var device = Run.DeviceOption();
        foreach (var o in new Option[] { data, outDir, epochs, teacherEpochs, seed, teacher, trainTeacher, device }) cmd.Options.Add(o);
        cmd.SetAction((parsed, ct) => Run.Guarded(parsed, ct, stop =>
        {
            string outRoot = parsed.GetValue(outDir)!;
            var context = Run.Context(parsed, outRoot, parsed.GetValue(device)!, threads: null, stop);
            var config = new QuickstartConfig
            {
                DataRoot = FindData(parsed.GetValue(data)), Epochs = parsed.GetValue(epochs), TeacherEpochs = parsed.GetValue(teacherEpochs),
                Seed = parsed.GetValue(seed), Teacher = parsed.GetValue(teacher), TrainTeacher = parsed.GetValue(trainTeacher),
            };
            var result = ConsoleReporting.WithProgress("quickstart", context, c => Quickstart.Run(config, c));
            if (result.Interrupted is { } after)
            {
                ConsoleReporting.Info($"stopped after {after}; rerun the quickstart to start again.");
                return Run.InterruptedExitCode;
            }
            var table = result.Rows.Select(r => (r.Name, $"k-NN (k=20) top-1 {r.KnnTop1:F2} %, linear top-1 {r.LinearTop1:F2} %")).ToList();
            table.Add(("teacher source", result.TeacherSource));
            table.Add(("attention KL to teacher (mean)", $"lambda 0: {result.MeanKlToTeacher[0]:G3}, AttnDistill: {result.MeanKlToTeacher[1]:G3} ({result.Panels} panels in {Path.Combine(outRoot, "attention")})"));
            table.Add(("report", result.ReportPath));
            table.Add(("stage times", string.Join(", ", result.Timings.Where(t => t.Stage != "total").Select(t => $"{t.Stage} {t.Seconds:F0} s"))));
            table.Add(("wall time", $"{result.Timings[^1].Seconds / 60:F1} min"));
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
