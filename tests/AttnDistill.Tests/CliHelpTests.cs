using AttnDistill.Tests.TestSupport;
using Xunit;

namespace AttnDistill.Tests;

/// <summary>Every verb documents itself, and a bad value is a one-line error with exit code 2.</summary>
public class CliHelpTests
{
    [Theory]
    [InlineData("pretrain-mae", "--picture-every")]
    [InlineData("pretrain-dino", "--warmup-teacher-temp-epochs")]
    [InlineData("distill", "--weight-attn")]
    [InlineData("teacher-cache", "--teacher-cache-dtype")]
    [InlineData("knn", "--label-fraction")]
    [InlineData("linear", "--sweep")]
    [InlineData("finetune", "--layer-decay")]
    [InlineData("quickstart", "--data")]
    [InlineData("data", "inspect")]
    public void VerbHelpListsItsOptions(string verb, string option)
    {
        var (code, output) = CliProcess.Attndistill(verb, "--help");
        Assert.True(code == 0, output);
        Assert.Contains(option, output);
    }

    /// <summary>main_dino's arguments, kebab-cased, each documented.</summary>
    [Fact]
    public void PretrainDinoHelpDocumentsEveryDinoSwitch()
    {
        var (code, output) = CliProcess.Attndistill("pretrain-dino", "--help");
        Assert.True(code == 0, output);
        foreach (var flag in new[] { "--arch", "--patch-size", "--out-dim", "--norm-last-layer", "--momentum-teacher", "--use-bn-in-head", "--warmup-teacher-temp ",
                     "--teacher-temp", "--warmup-teacher-temp-epochs", "--weight-decay ", "--weight-decay-end", "--clip-grad", "--batch-size-per-gpu", "--epochs",
                     "--freeze-last-layer", "--lr ", "--warmup-epochs", "--min-lr", "--global-crops-scale", "--local-crops-number", "--local-crops-scale",
                     "--drop-path-rate", "--data", "--output-dir", "--seed", "--num-workers", "--resume", "--device", "--local-crops-size" })
            Assert.Contains(flag, output);
    }

    /// <summary>The authors' exact interpolation is one switch away, and --help says what it costs.</summary>
    [Fact]
    public void ClampInterpolationFalseParsesAndIsDocumented()
    {
        var parsed = AttnDistill.Cli.CliApp.Parse(AttnDistill.Cli.CliApp.BuildRoot(),
            new[] { "distill", "--data", "d", "--teacher", "t.pth", "--out", "o", "--clamp-interpolation", "false" });
        Assert.Empty(parsed.Errors);
        Assert.False(parsed.GetValue<bool>("--clamp-interpolation"));
        Assert.Contains("clamp-interpolation: false", AttnDistill.Cli.RecipeArguments.Resolve(parsed));
        var (code, output) = CliProcess.Attndistill("distill", "--help");
        Assert.True(code == 0, output);
        Assert.Contains("the authors' interpolation exactly", output);
    }

    [Fact]
    public void DataInspectAndSubsetReadAFolder()
    {
        string root = SyntheticImageFolder.Write(10, 2);
        var (code, output) = CliProcess.Attndistill("data", "inspect", "--data", root);
        Assert.True(code == 0, output);
        Assert.Contains("ImageFolder", output);
        Assert.Contains("class3", output);
        string list = Path.Combine(Directory.CreateTempSubdirectory("subset").FullName, "10percent.txt");
        (code, output) = CliProcess.Attndistill("data", "subset", "--data", root, "--fraction", "0.1", "--out", list);
        Assert.True(code == 0, output);
        Assert.Equal(4, File.ReadAllLines(list).Length);                                  // one of each class's 10
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
