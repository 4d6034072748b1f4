using System.Diagnostics;

namespace AttnDistill.Tests.TestSupport;

/// <summary>Runs a program (the built CLI, dotnet publish) as a user would and collects its output.</summary>
public static class CliProcess
{
    /// <summary>The attndistill CLI built next to the tests (project reference).</summary>
    public static string CliDll => Path.Combine(AppContext.BaseDirectory, "attndistill.dll");

    public static (int Code, string Output) Run(string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args) psi.ArgumentList.Add(a);
        // Plain text: no ANSI colours or live progress redraws in what the tests read.
        psi.Environment["NO_COLOR"] = "1";
        psi.Environment["TERM"] = "dumb";
        using var p = Process.Start(psi)!;
        var stderr = p.StandardError.ReadToEndAsync();
        string stdout = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        return (p.ExitCode, stdout + stderr.Result);
    }

    /// <summary>`dotnet attndistill.dll args...`.</summary>
    public static (int Code, string Output) Attndistill(params string[] args) =>
        Run("dotnet", new[] { CliDll }.Concat(args).ToArray());
}
