using AttnDistill.Tests.TestSupport;
using System.Diagnostics;
using TorchSharp;
using Xunit;

namespace AttnDistill.Tests;

public class BuildTests
{
    [Fact]
    public void TorchInitializesInTestHost()
    {
        using var x = torch.arange(6, dtype: torch.float32);
        Assert.Equal(15f, x.sum().item<float>());
        Assert.StartsWith("2.10", torch.__version__);
    }

    [Fact]
    public void PatcherMarksOnlyTheNamedVersionWeak()
    {
        string lib = Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native", "libLibTorchSharp.so");
        Assert.True(File.Exists(lib));
        byte[] elf = File.ReadAllBytes(lib);
        var first = ElfVersionNeedPatcher.MarkVersionWeak(elf, "GLIBCXX_3.4.32");
        // The build output may already be patched (Debian 12) or not (newer systems).
        Assert.Contains(first, new[] { ElfVersionNeedPatcher.Outcome.Patched, ElfVersionNeedPatcher.Outcome.AlreadyWeak });
        Assert.Equal(ElfVersionNeedPatcher.Outcome.AlreadyWeak, ElfVersionNeedPatcher.MarkVersionWeak(elf, "GLIBCXX_3.4.32"));
        Assert.Equal(ElfVersionNeedPatcher.Outcome.NotReferenced, ElfVersionNeedPatcher.MarkVersionWeak(elf, "GLIBCXX_9.9.99"));
        Assert.Equal(ElfVersionNeedPatcher.Outcome.NotElf, ElfVersionNeedPatcher.MarkVersionWeak(new byte[100], "GLIBCXX_3.4.32"));
    }

    [Fact]
    public void PatcherLeavesLibraryAloneWhenSystemHasTheVersion()
    {
        string dir = Directory.CreateTempSubdirectory("elfpatch").FullName;
        string fakeStdCxx = Path.Combine(dir, "libstdc++.so.6");
        File.WriteAllBytes(fakeStdCxx, System.Text.Encoding.ASCII.GetBytes("junk\0GLIBCXX_3.4.32\0junk"));
        string lib = Path.Combine(dir, "lib.so");
        File.WriteAllBytes(lib, new byte[] { 1, 2, 3 });
        string said = ElfVersionNeedPatcher.PatchIfNeeded(lib, "GLIBCXX_3.4.32", fakeStdCxx);
        Assert.Contains("left as is", said);
        Assert.Equal(new byte[] { 1, 2, 3 }, File.ReadAllBytes(lib));
    }

    [Fact]
    public void PublishedCliLoadsTorch()
    {
        // dotnet publish runs the same patch target on the publish folder; run the result as a user would.
        string repo = Path.GetFullPath(Path.Combine(AppContext.BaseDirectory, "../../../../.."));
        string project = Path.Combine(repo, "src", "AttnDistill.Cli", "AttnDistill.Cli.csproj");
        string outDir = Directory.CreateTempSubdirectory("publish").FullName;
        var (code, output) = CliProcess.Run("dotnet", "publish", project, "-c", "Release", "-o", outDir, "--nologo", "-v", "q");
        Assert.True(code == 0, output);
        (code, output) = CliProcess.Run(Path.Combine(outDir, "attndistill"), "info");
        Assert.True(code == 0, output);
        Assert.Contains("libtorch 2.10", output);
    }

    [Fact]
    public void CliLoadsTorch()
    {
        // The CLI is built next to the tests (project reference); run it as a user would.
        var (code, output) = CliProcess.Attndistill("info");
        Assert.True(code == 0, output);
        Assert.Contains("libtorch 2.10", output);
    }
}
