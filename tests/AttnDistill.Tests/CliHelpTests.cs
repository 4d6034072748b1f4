using AttnDistill.Tests.TestSupport;
using Xunit;

namespace AttnDistill.Tests;

/// <summary>Every verb documents itself, and a bad value is a one-line error with exit code 2.</summary>
public class CliHelpTests
{
    [Theory]
    [InlineData("pretrain-mae", "--picture-every")]
    [InlineData("distill", "--weight-attn")]
    [InlineData("knn", "--label-fraction")]
    [InlineData("linear", "--sweep")]
    [InlineData("finetune", "--layer-decay")]
    [InlineData("quickstart", "--data")]
    public void VerbHelpListsItsOptions(string verb, string option)
    {
        var (code, output) = CliProcess.Attndistill(verb, "--help");
        Assert.True(code == 0, output);
        Assert.Contains(option, output);
    }

    [Fact]
    public void ALabelFractionOutOfRangeIsNamed()
    {
        string root = SyntheticImageFolder.Write(2, 1);
        var (code, output) = CliProcess.Attndistill("knn", "--data", root, "--checkpoint", "/nonexistent.pth", "--label-fraction", "1.5",
            "--out", Directory.CreateTempSubdirectory("cli").FullName);
        Assert.Equal(2, code);
        Assert.Contains("--label-fraction", output);
        Assert.DoesNotContain("   at ", output);
    }
}
