using System.Diagnostics;
using System.Runtime.InteropServices;
using AttnDistill.Checkpoints;
using AttnDistill.Models;
using AttnDistill.Tests.TestSupport;
using AttnDistill.Training;

namespace AttnDistill.Tests.Reliability;

/// <summary>
/// Runs the real CLI (`attndistill distill --resume ...`) as a child process, kills it with SIGKILL
/// at random moments (some timed to land while a checkpoint's .tmp file is being written), resumes
/// each time, and checks after every kill that each checkpoint on disk loads. Also sends SIGINT or
/// SIGTERM for a graceful stop. The test suite runs a short version; bench/soak the long one.
/// </summary>
public sealed class KillHarness
{
    public sealed record Settings
    {
        public required string CliDll { get; init; }
        public required string WorkDir { get; init; }
        public int Images { get; init; } = 512;
        public int Epochs { get; init; } = 4;
        public int BatchSize { get; init; } = 32;
        public int Seed { get; init; } = 5;
        public int Kills { get; init; } = 3;
        /// <summary>Graceful stops (alternating SIGTERM and SIGINT) before the kills.</summary>
        public int Signals { get; init; } = 1;
        /// <summary>Every this-many kills waits for a checkpoint write and kills during it.</summary>
        public int MidWriteEvery { get; init; } = 2;
        public TimeSpan ProcessTimeout { get; init; } = TimeSpan.FromMinutes(5);
        public Action<string>? Log { get; init; }
    }

    public sealed record Outcome(int Kills, int KilledDuringCheckpointWrite, int Signals, IReadOnlyList<int> SignalExitCodes,
        int CheckpointsChecked, IReadOnlyList<string> Unreadable, int Launches, bool FinalWeightsEqual, string Detail, double ReferenceSeconds)
    {
        public override string ToString() =>
            $"{Kills} SIGKILLs ({KilledDuringCheckpointWrite} during a checkpoint write), {Signals} graceful stops (exit codes {string.Join(", ", SignalExitCodes)}), " +
            $"{Launches} launches, {CheckpointsChecked} checkpoint loads checked, {Unreadable.Count} unreadable; final weights equal: {FinalWeightsEqual} ({Detail}); uninterrupted run {ReferenceSeconds:F1} s";
    }

    readonly Settings _s;
    readonly Random _rng;
    string _data = "", _teacher = "";

    public KillHarness(Settings settings)
    {
        _s = settings;
        _rng = new Random(settings.Seed * 7919 + settings.Kills);
    }

    /// <summary>A small teacher the student distills from (ViT 28 px, patch 4, width 64, 2 blocks).</summary>
    public static string MakeTeacher(string dir)
    {
        TorchSharp.torch.manual_seed(11);
        var cfg = new VitConfig { ImageSize = 28, PatchSize = 4, EmbedDim = 64, Depth = 2, NumHeads = 4 };
        using var t = new VisionTransformer(cfg);
        string path = Path.Combine(dir, "teacher.safetensors");
        BackboneExport.SaveSafetensors(t, path, cfg);
        return path;
    }

    public string[] DistillArgs(string outDir) => new[]
    {
        "distill", "--data", _data, "--teacher", _teacher, "--student", "vit_tiny_patch16", "--student-patch", "7", "--student-depth", "2",
        "--student-heads", "2", "--student-dim", "32", "--image-size", "28", "--proj-layers", "2", "--epochs", _s.Epochs.ToString(),
        "--warmup-epochs", "1", "--batch-size", _s.BatchSize.ToString(), "--lr", "1e-3", "--seed", _s.Seed.ToString(), "--workers", "1",
        "--threads", "1", "--log-every", "1", "--out", outDir, "--resume",
    };

    public Outcome Run()
    {
        Directory.CreateDirectory(_s.WorkDir);
        _data = FashionMnistSlice.Create(_s.Images, _s.WorkDir);
        _teacher = MakeTeacher(_s.WorkDir);
        string reference = Path.Combine(_s.WorkDir, "reference"), killed = Path.Combine(_s.WorkDir, "killed");

        var watch = Stopwatch.StartNew();
        var (code, output) = RunToEnd(reference);
        double referenceSeconds = watch.Elapsed.TotalSeconds;
        if (code != 0) throw new InvalidOperationException($"the uninterrupted run failed ({code}):\n{output}");
        _s.Log?.Invoke($"uninterrupted run: {referenceSeconds:F1} s");

        int launches = 1, kills = 0, midWrite = 0, checkedLoads = 0;
        var unreadable = new List<string>();
        var signalCodes = new List<int>();
        for (int i = 0; i < _s.Signals; i++)
        {
            int signal = i % 2 == 0 ? 15 : 2;
            launches++;
            int exit = SignalDuringTraining(killed, signal);
            signalCodes.Add(exit);
            checkedLoads += CheckAllCheckpoints(killed, unreadable);
            _s.Log?.Invoke($"signal {signal}: exit code {exit}, checkpoints {string.Join(", ", CheckpointFiles.List(killed).Select(Path.GetFileName))}");
        }
        while (kills < _s.Kills)
        {
            launches++;
            bool duringWrite = _s.MidWriteEvery > 0 && kills % _s.MidWriteEvery == _s.MidWriteEvery - 1;
            var (wasKilled, tmpSeen) = duringWrite ? KillDuringCheckpointWrite(killed) : KillAfterRandomDelay(killed, referenceSeconds);
            if (!wasKilled)
            {
                // The run finished before the kill came: start over in a fresh folder is not needed; the
                // kill count simply continues on the next launch (a finished run resumes to the end at once).
                _s.Log?.Invoke("run finished before the kill");
                if (CheckpointFiles.List(killed).Any(p => p.EndsWith($"checkpoint-{_s.Epochs:D4}.ckpt", StringComparison.Ordinal)))
                    foreach (var f in Directory.EnumerateFiles(killed)) File.Delete(f);
                continue;
            }
            kills++;
            if (tmpSeen) midWrite++;
            checkedLoads += CheckAllCheckpoints(killed, unreadable);
            _s.Log?.Invoke($"kill {kills}{(tmpSeen ? " (during a checkpoint write)" : "")}: checkpoints {string.Join(", ", CheckpointFiles.List(killed).Select(Path.GetFileName))}");
        }
        launches++;
        (code, output) = RunToEnd(killed);
        if (code != 0) throw new InvalidOperationException($"the final resumed run failed ({code}):\n{output}");
        if (output.Contains("skipping unreadable checkpoint", StringComparison.Ordinal)) unreadable.Add("a resumed run skipped an unreadable checkpoint");
        checkedLoads += CheckAllCheckpoints(killed, unreadable);

        var (equal, detail) = SameFinalWeights(reference, killed);
        return new Outcome(kills, midWrite, _s.Signals, signalCodes, checkedLoads, unreadable, launches, equal, detail, referenceSeconds);
    }

    /// <summary>backbone.safetensors bit for bit, and every tensor of the last checkpoint's model.</summary>
    static (bool Equal, string Detail) SameFinalWeights(string a, string b)
    {
        byte[] ba = File.ReadAllBytes(Path.Combine(a, "backbone.safetensors")), bb = File.ReadAllBytes(Path.Combine(b, "backbone.safetensors"));
        if (!ba.AsSpan().SequenceEqual(bb)) return (false, "backbone.safetensors differs");
        using var ca = TrainingCheckpoint.Load(CheckpointFiles.List(a)[0]);
        using var cb = TrainingCheckpoint.Load(CheckpointFiles.List(b)[0]);
        foreach (var (k, t) in ca.Model)
            if (!cb.Model.TryGetValue(k, out var u) || !t.equal(u).all().item<bool>()) return (false, $"checkpoint tensor {k} differs");
        return (true, $"backbone.safetensors identical ({ba.Length} bytes), {ca.Model.Count} checkpoint tensors identical");
    }

    static int CheckAllCheckpoints(string dir, List<string> unreadable)
    {
        int n = 0;
        foreach (string p in CheckpointFiles.List(dir))
        {
            n++;
            try { TrainingCheckpoint.Load(p).Dispose(); }
            catch (Exception ex) { unreadable.Add($"{p}: {ex.Message}"); }
        }
        return n;
    }

    ProcessStartInfo StartInfo(string outDir)
    {
        // A shell's background job starts with SIGINT ignored, and an ignored signal stays ignored
        // across exec; coreutils' env restores the default so the CLI's own handler can take it.
        var psi = new ProcessStartInfo(EnvRestoresSignals.Value ? "env" : "dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        if (EnvRestoresSignals.Value)
        {
            psi.ArgumentList.Add("--default-signal=INT");
            psi.ArgumentList.Add("dotnet");
        }
        psi.ArgumentList.Add(_s.CliDll);
        foreach (string a in DistillArgs(outDir)) psi.ArgumentList.Add(a);
        psi.Environment["NO_COLOR"] = "1";
        return psi;
    }

    /// <summary>True when env(1) knows --default-signal (GNU coreutils 8.31 and later).</summary>
    static readonly Lazy<bool> EnvRestoresSignals = new(() =>
    {
        if (!OperatingSystem.IsLinux()) return false;
        try
        {
            using var p = Process.Start(new ProcessStartInfo("env", "--default-signal=INT true") { RedirectStandardError = true })!;
            p.WaitForExit();
            return p.ExitCode == 0;
        }
        catch (System.ComponentModel.Win32Exception) { return false; }
    });

    /// <summary>Starts the CLI with its output drained (and dropped).</summary>
    Process Start(string outDir)
    {
        var p = Process.Start(StartInfo(outDir))!;
        p.OutputDataReceived += (_, _) => { };
        p.ErrorDataReceived += (_, _) => { };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        return p;
    }

    (int Code, string Output) RunToEnd(string outDir)
    {
        using var p = Process.Start(StartInfo(outDir))!;
        var err = p.StandardError.ReadToEndAsync();
        string stdout = p.StandardOutput.ReadToEnd();
        if (!p.WaitForExit(_s.ProcessTimeout)) { p.Kill(); throw new TimeoutException("distill did not finish"); }
        return (p.ExitCode, stdout + err.Result);
    }

    /// <summary>SIGKILL after a random delay within the run's expected duration; true when it was still running.</summary>
    (bool Killed, bool TmpSeen) KillAfterRandomDelay(string outDir, double runSeconds)
    {
        RemoveStaleTempFiles(outDir);
        using var p = Start(outDir);
        // Within what is left of the run (a resumed run is shorter), startup included.
        var newest = CheckpointFiles.List(outDir).FirstOrDefault();
        double done = newest is null ? 0 : int.Parse(Path.GetFileName(newest)["checkpoint-".Length..][..4]) / (double)_s.Epochs;
        int delayMs = (int)(_rng.NextDouble() * runSeconds * 1000 * Math.Max(0.3, 1 - done)) + 200;
        if (p.WaitForExit(delayMs)) return (false, false);
        p.Kill();
        p.WaitForExit();
        _s.Log?.Invoke($"SIGKILL after {delayMs} ms");
        return (true, TempFiles(outDir).Any());
    }

    /// <summary>SIGKILL as soon as a checkpoint's .tmp file appears (the atomic write is in progress).</summary>
    (bool Killed, bool TmpSeen) KillDuringCheckpointWrite(string outDir)
    {
        RemoveStaleTempFiles(outDir);
        using var p = Start(outDir);
        var seen = new ManualResetEventSlim();
        using var fsw = new FileSystemWatcher(outDir, "checkpoint-*.tmp") { NotifyFilter = NotifyFilters.FileName | NotifyFilters.Size | NotifyFilters.LastWrite };
        fsw.Created += (_, _) => { if (!seen.IsSet) { try { p.Kill(); } catch (InvalidOperationException) { } seen.Set(); } };
        fsw.EnableRaisingEvents = true;
        var deadline = Stopwatch.StartNew();
        while (!p.HasExited && !seen.IsSet && deadline.Elapsed < _s.ProcessTimeout)
        {
            // Polling as well: an inotify event can come late on a busy machine.
            if (TempFiles(outDir).Any()) { try { p.Kill(); } catch (InvalidOperationException) { } seen.Set(); break; }
            Thread.Sleep(1);
        }
        p.WaitForExit();
        bool killed = seen.IsSet && p.ExitCode != 0;
        return (killed, killed && TempFiles(outDir).Any());
    }

    /// <summary>A killed write leaves its .tmp behind (the next save overwrites it); remove it so "killed mid-write" is judged afresh.</summary>
    static void RemoveStaleTempFiles(string dir)
    {
        Directory.CreateDirectory(dir);
        foreach (string stale in TempFiles(dir)) File.Delete(stale);
    }

    static IEnumerable<string> TempFiles(string dir) =>
        Directory.Exists(dir) ? Directory.EnumerateFiles(dir, "checkpoint-*.tmp") : Enumerable.Empty<string>();

    /// <summary>Sends SIGTERM (15) or SIGINT (2) once training has logged a step; returns the exit code.</summary>
    int SignalDuringTraining(string outDir, int signal)
    {
        string log = Path.Combine(outDir, "log.txt");
        long before = File.Exists(log) ? new FileInfo(log).Length : 0;
        using var p = Start(outDir);
        var deadline = Stopwatch.StartNew();
        while (!p.HasExited && deadline.Elapsed < _s.ProcessTimeout)
        {
            if (File.Exists(log) && new FileInfo(log).Length > before + 200) break;
            Thread.Sleep(5);
        }
        if (!p.HasExited) _ = Kill(p.Id, signal);
        if (!p.WaitForExit(_s.ProcessTimeout)) { p.Kill(); return -1; }
        return p.ExitCode;
    }

    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int Kill(int pid, int signal);
}
