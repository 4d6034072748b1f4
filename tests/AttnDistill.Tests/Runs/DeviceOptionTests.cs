using System.Text.Json.Nodes;
using AttnDistill.Tests.Reliability;
using Xunit;
using Xunit.Abstractions;

namespace AttnDistill.Tests.Runs;

/// <summary>
/// `--device` through the real CLI entry point: a device this build or machine lacks is refused
/// in one line before any work, on every verb; `--device cpu` given explicitly runs every verb and
/// is recorded in config.yaml and metrics.json.
/// </summary>
public class DeviceOptionTests(BadConfigFixture f, ITestOutputHelper log) : IClassFixture<BadConfigFixture>
{
    static string NewOut(string name) => Path.Combine(Directory.CreateTempSubdirectory("device-" + name).FullName, "run");

    string[] Args(string verb, string outDir, string device, string? backbone = null) => verb switch
    {
        "distill" => new[] { "distill", "--data", f.Data, "--teacher", f.Teacher, "--student", "vit_tiny_patch16", "--student-patch", "7", "--student-depth", "1",
            "--student-heads", "2", "--student-dim", "32", "--image-size", "28", "--proj-layers", "1", "--epochs", "1", "--warmup-epochs", "0",
            "--batch-size", "4", "--workers", "0", "--out", outDir, "--device", device },
        "pretrain-mae" => new[] { "pretrain-mae", "--data", f.Data, "--model", "mae_vit_tiny_patch16", "--patch-size", "7", "--depth", "1", "--heads", "2", "--dim", "32",
            "--decoder-dim", "16", "--decoder-depth", "1", "--decoder-heads", "2", "--image-size", "28", "--epochs", "1", "--warmup-epochs", "0",
            "--batch-size", "4", "--workers", "0", "--picture-every", "0", "--out", outDir, "--device", device },
        "knn" => new[] { "knn", "--checkpoint", backbone ?? f.Teacher, "--data", f.Data, "--image-size", "28", "--k", "2", "--batch-size", "8", "--workers", "0", "--out", outDir, "--device", device },
        "linear" => new[] { "linear", "--checkpoint", backbone ?? f.Teacher, "--data", f.Data, "--image-size", "28", "--cached-features", "--epochs", "2", "--warmup-epochs", "1",
            "--batch-size", "8", "--workers", "0", "--out", outDir, "--device", device },
        "finetune" => new[] { "finetune", "--checkpoint", backbone ?? f.Teacher, "--data", f.Data, "--image-size", "28", "--epochs", "1", "--warmup-epochs", "0",
            "--batch-size", "4", "--eval-batch-size", "8", "--workers", "0", "--out", outDir, "--device", device },
        "visualize" => new[] { "visualize", "--teacher", f.Teacher, "--student", $"s={backbone ?? f.Teacher}", "--images", Path.Combine(f.Data, "test"),
            "--image-size", "28", "--out", outDir, "--device", device },
        "export" => new[] { "export", "--checkpoint", backbone ?? f.Teacher, "--out", Path.Combine(outDir, "model.onnx"), "--device", device },
        "quickstart" => new[] { "quickstart", "--data", f.Data, "--out", outDir, "--device", device },
        "bench" => new[] { "bench", "--suite", "device-check", "--small", "--out", outDir, "--device", device },
        "bench-workloads" => new[] { "bench", "--workloads", "none", "--device", device },
        "pretrain-dino" => new[] { "pretrain-dino", "--data", f.Data, "--out", outDir, "--device", device },
        _ => throw new ArgumentException(verb),
    };

    public static TheoryData<string> Verbs => new() { "distill", "pretrain-mae", "pretrain-dino", "knn", "linear", "finetune", "visualize", "export", "quickstart", "bench", "bench-workloads" };

    [SkippableTheory]
    [MemberData(nameof(Verbs))]
    public void AMissingGpuIsOneLineNamingTheBuildSwitchAndWhatTorchCudaReports(string verb)
    {
        Skip.If(TorchSharp.torch.cuda.is_available(), "this machine has a GPU");
        string outDir = NewOut(verb);
        foreach (string device in new[] { "cuda", "cuda:3" })
        {
            var r = BadConfigTests.RunCli(Args(verb, outDir, device));
            CliErrors.AssertOneLine(log, r, $"--device {device}", "-p:TorchBackend=cuda", "torch.cuda.is_available() is false");
            Assert.False(File.Exists(Path.Combine(outDir, "log.txt")), "nothing ran");
            Assert.False(File.Exists(Path.Combine(outDir, "config.yaml")), "the run folder was not prepared");
        }
        CliErrors.AssertOneLine(log, BadConfigTests.RunCli(Args(verb, outDir, "tpu")), "--device tpu", "cpu, cuda or cuda:N");
    }

    [Fact]
    public void EveryVerbRunsWithAnExplicitCpuDeviceAndRecordsIt()
    {
        void Ok((int Code, string Output) r)
        {
            log.WriteLine(r.Output.Length > 3000 ? r.Output[^3000..] : r.Output);
            Assert.True(r.Code == 0, $"exit {r.Code}: {r.Output}");
        }
        void Recorded(string dir, string job)
        {
            Assert.Contains("device: cpu", File.ReadAllLines(Path.Combine(dir, "config.yaml")));
            var run = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "metrics.json")))!["run"]!;
            Assert.Equal(job, run["job"]!.GetValue<string>());
            Assert.Equal("cpu", run["device"]!.GetValue<string>());
            Assert.Equal(1, run["world_size"]!.GetValue<int>());
        }
        string distill = NewOut("distill");
        Ok(BadConfigTests.RunCli(Args("distill", distill, "cpu")));
        Recorded(distill, "distill");
        string backbone = Path.Combine(distill, "backbone.safetensors");
        string mae = NewOut("mae");
        Ok(BadConfigTests.RunCli(Args("pretrain-mae", mae, "cpu")));
        Recorded(mae, "pretrain-mae");
        foreach (var (verb, job) in new[] { ("knn", "knn"), ("linear", "linear"), ("finetune", "finetune"), ("visualize", "visualize") })
        {
            string dir = NewOut(verb);
            Ok(BadConfigTests.RunCli(Args(verb, dir, "cpu", backbone)));
            Recorded(dir, job);
        }
        // An export writes one file, no run folder.
        string export = NewOut("export");
        Directory.CreateDirectory(export);
        Ok(BadConfigTests.RunCli(Args("export", export, "cpu", backbone)));
        Assert.True(new FileInfo(Path.Combine(export, "model.onnx")).Length > 1000);
    }
}
