using System.Runtime.InteropServices;

namespace AttnDistill.Cli;

/// <summary>
/// libtorch's OpenMP threads spin after each parallel region by default, which takes the cores from
/// data loading and from other processes. libgomp reads OMP_WAIT_POLICY once, when it is loaded,
/// which happens at the first torch call (TorchSharp loads libtorch lazily), so setting it at the
/// top of Main is early enough. It must reach the C environment: .NET's
/// Environment.SetEnvironmentVariable only changes the managed copy on Unix, hence libc's setenv.
/// A value the user set is kept.
/// </summary>
static class OpenMpWaitPolicy
{
    [DllImport("libc", EntryPoint = "setenv", SetLastError = true)]
    static extern int SetEnv(string name, string value, int overwrite);

    public static void DefaultToPassive()
    {
        if (!string.IsNullOrEmpty(Environment.GetEnvironmentVariable("OMP_WAIT_POLICY"))) return;
        Environment.SetEnvironmentVariable("OMP_WAIT_POLICY", "PASSIVE");
        if (!OperatingSystem.IsWindows())
        {
            try { SetEnv("OMP_WAIT_POLICY", "PASSIVE", 0); }
            catch (Exception ex) when (ex is DllNotFoundException or EntryPointNotFoundException) { }
        }
    }
}
