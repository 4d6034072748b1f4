using System.Text.Json;
using AttnDistill.Benchmarks;
using AttnDistill.Runs;

namespace AttnDistill.Cli.Commands;

/// <summary>`attndistill bench --suite device-check`: runs the check and prints it as a Markdown table; exit 1 if a row failed.</summary>
public static class DeviceCheckOutput
{
    public static int Run(string deviceText, bool small, string outDir, string? json, int seed)
    {
        var device = RunDevice.Resolve(deviceText, AttnDistill.Distributed.DistributedContext.LaunchLocalRank);
        var shapes = (small ? DeviceCheckShapes.Small(device) : DeviceCheckShapes.Gpu(device)) with { Seed = seed };
        ConsoleReporting.Info($"device check on {RunDevice.Name(device)}: {TorchRuntime.BackendDescription}");
        var rows = DeviceCheck.Run(shapes, outDir, ConsoleReporting.Info);
        Console.WriteLine($"device check, {RunDevice.Name(device)}, {(small ? "small shapes" : "ViT-S/16 -> ViT-T/16 at 224, batch 128")}, {TorchRuntime.BackendDescription}");
        Console.WriteLine();
        Console.WriteLine("| check | value | unit | reference | status |");
        Console.WriteLine("| --- | ---: | --- | --- | --- |");
        foreach (var r in rows)
            Console.WriteLine($"| {r.Check} | {r.Value:G5} | {r.Unit} | {r.Reference} | {(r.Ok ? "ok" : "FAILED")} |");
        if (json is not null)
        {
            if (Path.GetDirectoryName(Path.GetFullPath(json)) is { } dir) Directory.CreateDirectory(dir);
            File.WriteAllText(json, JsonSerializer.Serialize(rows, new JsonSerializerOptions { WriteIndented = true }));
        }
        int failed = rows.Count(r => !r.Ok);
        Console.WriteLine();
        Console.WriteLine(failed == 0 ? $"device check: all {rows.Count} checks ok" : $"device check: {failed} of {rows.Count} checks FAILED");
        return failed == 0 ? 0 : 1;
    }
}
