using System.Diagnostics;
using System.Text;

namespace AttnDistill.Tests.Distributed;

/// <summary>Launching Open MPI jobs from tests: finds mpirun, runs or starts a job, collects its output.</summary>
static class Mpirun
{
    /// <summary>mpirun on PATH, or null (the MPI tests are then skipped).</summary>
    public static string? Path { get; } = Find();

    public const string SkipReason = "mpirun not found: install Open MPI (apt-get install openmpi-bin) to run the data-parallel tests";

    /// <summary>
    /// Options every test launch uses: root in CI containers, 2 ranks on any core count, no
    /// pinning, and no cross-process memory copy (CMA), which containers without ptrace forbid.
    /// </summary>
    public const string CommonOptions = "--allow-run-as-root --oversubscribe --bind-to none --mca btl_vader_single_copy_mechanism none";

    static string? Find()
    {
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries))
        {
            string p = System.IO.Path.Combine(dir, "mpirun");
            if (File.Exists(p)) return p;
        }
        return null;
    }

    /// <summary>A running job whose stdout and stderr are collected.</summary>
    public sealed class Job : IDisposable
    {
        private readonly Process _process;
        private readonly StringBuilder _output = new();

        public Job(string arguments)
        {
            var psi = new ProcessStartInfo(Path ?? throw new InvalidOperationException(SkipReason), $"{CommonOptions} {arguments}")
            {
                RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
            };
            // Plain text output, no terminal probing by the ranks.
            psi.Environment["TERM"] = "dumb";
            psi.Environment.Remove("OMP_NUM_THREADS");
            _process = Process.Start(psi)!;
            _process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (_output) _output.AppendLine(e.Data); };
            _process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (_output) _output.AppendLine(e.Data); };
            _process.BeginOutputReadLine();
            _process.BeginErrorReadLine();
        }

        public bool HasExited => _process.HasExited;

        public string Output { get { lock (_output) return _output.ToString(); } }

        /// <summary>Waits for the job to end; kills it past the timeout.</summary>
        public int Wait(TimeSpan timeout)
        {
            if (!_process.WaitForExit(timeout))
            {
                _process.Kill(entireProcessTree: true);
                _process.WaitForExit();
                throw new TimeoutException($"mpirun did not finish in {timeout.TotalSeconds} s:\n{Output}");
            }
            _process.WaitForExit();   // drains the output
            return _process.ExitCode;
        }

        /// <summary>SIGKILL to mpirun and every rank it started, all at once: a crash, as on a node failure.</summary>
        public void KillTree()
        {
            try { _process.Kill(entireProcessTree: true); }
            catch (InvalidOperationException) { }   // already exited
        }

        public void Dispose()
        {
            if (!_process.HasExited) _process.Kill(entireProcessTree: true);
            _process.Dispose();
        }
    }

    /// <summary>Runs a job to the end; returns its exit code and output.</summary>
    public static (int Code, string Output) Run(string arguments, TimeSpan timeout)
    {
        using var job = new Job(arguments);
        int code = job.Wait(timeout);
        return (code, job.Output);
    }

}
