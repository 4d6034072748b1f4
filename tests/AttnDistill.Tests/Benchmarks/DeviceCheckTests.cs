using System.Globalization;
using AttnDistill.Tests.TestSupport;
using Xunit;

namespace AttnDistill.Tests.Benchmarks;

/// <summary>
/// The GPU check's CPU path, so it cannot rot: the CLI entry (`bench --suite device-check --device
/// cpu --small`), scripts/gpu-check.sh's --cpu mode against the CLI built next to the tests, and
/// bash's syntax check of both scripts (their GPU half runs only on a GPU box).
/// </summary>
public class DeviceCheckTests
{
    static readonly string[] ExpectedChecks =
    {
        "matmul bf16", "step-1 loss cls", "step-1 loss attn", "step-1 loss total", "distill steps",
        "distill step of bf16 matmul bar", "distill loss after the steps", "k-NN features", "k-NN top-1 on cpu",
        "k-NN top-1: device minus cpu", "ONNX export of the student",
    };

    static string Scripts
    {
        get
        {
            var dir = new DirectoryInfo(AppContext.BaseDirectory);
            while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "scripts", "gpu-check.sh"))) dir = dir.Parent;
            return Path.Combine(dir?.FullName ?? throw new DirectoryNotFoundException("scripts/gpu-check.sh not found above the test output"), "scripts");
        }
    }

    /// <summary>The rows of the check's Markdown table: every one has a finite value and says ok.</summary>
    static void AssertEveryRowFiniteAndOk(string output)
    {
        var rows = output.Split('\n').Select(l => l.Trim())
            .Where(l => l.StartsWith("| ") && !l.StartsWith("| check") && !l.StartsWith("| step |") && !l.StartsWith("| ---"))
            .Select(l => l.Trim('|').Split('|').Select(c => c.Trim()).ToArray())
            .Where(c => c.Length == 5).ToArray();
        foreach (string name in ExpectedChecks)
            Assert.Contains(rows, r => r[0].StartsWith(name, StringComparison.Ordinal));
        Assert.Equal(ExpectedChecks.Length, rows.Length);
        foreach (var r in rows)
        {
            Assert.True(double.TryParse(r[1], NumberStyles.Float, CultureInfo.InvariantCulture, out double v) && double.IsFinite(v), $"row '{r[0]}' has value '{r[1]}'");
            Assert.Equal("ok", r[4]);
        }
        var loss = rows.Single(r => r[0].StartsWith("step-1 loss total"));
        Assert.InRange(double.Parse(loss[1], CultureInfo.InvariantCulture), 0, AttnDistill.Benchmarks.DeviceCheck.Bf16LossTolerance);
        Assert.Contains("device check: all 11 checks ok", output);
    }

    [Fact]
    public void TheCpuPathRunsThroughTheCliWithFiniteRows()
    {
        string outDir = Directory.CreateTempSubdirectory("device-check").FullName;
        string json = Path.Combine(outDir, "check.json");
        var (code, output) = CliProcess.Attndistill("bench", "--suite", "device-check", "--device", "cpu", "--small", "--out", outDir, "--json", json);
        Assert.True(code == 0, output);
        AssertEveryRowFiniteAndOk(output);
        Assert.True(new FileInfo(Path.Combine(outDir, "student.onnx")).Length > 10_000, "no ONNX export written");
        Assert.Contains("\"Ok\": true", File.ReadAllText(json));
    }

    [Fact]
    public void TheScriptsParseAndTheCpuModeRunsAgainstTheBuiltCli()
    {
        foreach (string script in new[] { "gpu-check.sh", "gpu-check-prepare.sh" })
        {
            var (syntax, said) = CliProcess.Run("bash", "-n", Path.Combine(Scripts, script));
            Assert.True(syntax == 0, $"{script}: {said}");
        }
        string work = Directory.CreateTempSubdirectory("gpu-check").FullName;
        var (code, output) = CliProcess.Run("bash", Path.Combine(Scripts, "gpu-check.sh"), "--cpu", "--cli", CliProcess.CliDll, "--work", work);
        Assert.True(code == 0, output);
        AssertEveryRowFiniteAndOk(output);
        Assert.Contains("| device check (cpu, small shapes) |", output);   // the timed steps
        Assert.True(File.Exists(Path.Combine(work, "device-check.json")));
    }

    [Fact]
    public void ACudaDeviceOnThisBuildIsAOneLineError()
    {
        var (code, output) = CliProcess.Attndistill("bench", "--suite", "device-check", "--device", "cuda", "--small");
        Assert.Equal(2, code);
        Assert.Contains("torch.cuda.is_available() is false", output);
    }
}
