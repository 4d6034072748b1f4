using System.Diagnostics;
using System.Globalization;
using System.Text.Json;

namespace AttnDistill.Benchmarks;

/// <summary>torchvision's loader throughput on a folder, or why it was not timed.</summary>
public sealed record TorchvisionTiming(double? ImagesPerSecond, string? Version, string? Note);

/// <summary>
/// Runs bench/reference/data_torchvision.py (embedded in this assembly) with the system Python:
/// ImageFolder + RandomResizedCrop(224, scale (0.2, 1), bicubic) + flip + ToTensor + Normalize in a
/// DataLoader with the same worker count, on the same files, so the two loaders are timed in one
/// run. Python is $ATTNDISTILL_PYTHON, else /usr/bin/python3 (Debian's, where python3-torchvision lives).
/// </summary>
public static class TorchvisionReference
{
    public static TorchvisionTiming Measure(string root, int imageSize, int workers, int repeats)
    {
        string python = Environment.GetEnvironmentVariable("ATTNDISTILL_PYTHON") ?? "/usr/bin/python3";
        if (!File.Exists(python)) return new TorchvisionTiming(null, null, $"{python} not found");
        string dir = Directory.CreateTempSubdirectory("attndistill-tv-").FullName;
        try
        {
            string script = Path.Combine(dir, "data_torchvision.py"), json = Path.Combine(dir, "out.json");
            using (var resource = typeof(TorchvisionReference).Assembly.GetManifestResourceStream("data_torchvision.py")!)
            using (var file = File.Create(script))
                resource.CopyTo(file);
            var psi = new ProcessStartInfo(python) { RedirectStandardOutput = true, RedirectStandardError = true };
            foreach (var a in new[] { script, "--data", root, "--workers", workers.ToString(CultureInfo.InvariantCulture),
                         "--size", imageSize.ToString(CultureInfo.InvariantCulture), "--repeats", repeats.ToString(CultureInfo.InvariantCulture), "--json", json })
                psi.ArgumentList.Add(a);
            using var p = Process.Start(psi)!;
            var stderr = p.StandardError.ReadToEndAsync();
            _ = p.StandardOutput.ReadToEnd();
            p.WaitForExit();
            if (p.ExitCode != 0 || !File.Exists(json))
            {
                string last = stderr.Result.Split('\n', StringSplitOptions.RemoveEmptyEntries).LastOrDefault() ?? $"exit code {p.ExitCode}";
                return new TorchvisionTiming(null, null, last.Contains("No module named") ? "python3-torchvision not installed" : last);
            }
            using var doc = JsonDocument.Parse(File.ReadAllText(json));
            return new TorchvisionTiming(doc.RootElement.GetProperty("median").GetDouble(), doc.RootElement.GetProperty("torchvision").GetString(), null);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
