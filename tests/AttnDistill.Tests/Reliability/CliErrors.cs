using Xunit;
using Xunit.Abstractions;

namespace AttnDistill.Tests.Reliability;

/// <summary>What a refused command must look like to a user.</summary>
public static class CliErrors
{
    /// <summary>Exit code 2 and exactly one error line, containing every given word; no stack trace.</summary>
    public static void AssertOneLine(ITestOutputHelper log, (int Code, string Output) r, params string[] words)
    {
        string shown = r.Output.Length > 4000 ? r.Output[..4000] : r.Output;
        log.WriteLine(shown);
        Assert.True(r.Code == 2, $"exit code {r.Code}: {shown}");
        var errors = r.Output.Split('\n').Where(l => l.StartsWith("error:", StringComparison.Ordinal)).ToArray();
        Assert.True(errors.Length == 1, $"expected one error line: {r.Output}");
        foreach (string w in words) Assert.Contains(w, errors[0], StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("   at ", r.Output);
        Assert.True(errors[0].Length < 3000, $"error line of {errors[0].Length} characters");
    }
}
