using System.CommandLine;
using AttnDistill.Cli;
using AttnDistill.Cli.Commands;
using AttnDistill.Tests.TestSupport;
using Xunit;

namespace AttnDistill.Tests;

/// <summary>List options read what their help shows: numbers separated by spaces, commas or both.</summary>
public class CliListOptionTests
{
    static (ParseResult Parsed, NumberListOption<T> Option) Parse<T>(string verb, string name, params string[] args) where T : struct, System.Numerics.INumber<T>
    {
        var root = CliApp.BuildRoot();
        var command = root.Subcommands.Single(c => c.Name == verb);
        var option = (NumberListOption<T>)command.Options.Single(o => o.Name == name);
        return (CliApp.Parse(root, new[] { verb }.Concat(args).ToArray()), option);
    }

    [Theory]
    [InlineData("10", "20")]
    [InlineData("10,20")]
    [InlineData("10, 20")]
    [InlineData("10,", "20")]
    public void SpacesAndCommasGiveTheSameList(params string[] values)
    {
        var (parsed, k) = Parse<int>("knn", "--k", new[] { "--data", "d", "--checkpoint", "c", "--out", "o", "--k" }.Concat(values).ToArray());
        Assert.Empty(parsed.Errors);
        Assert.Equal(new[] { 10, 20 }, k.Read(parsed));
    }

    [Fact]
    public void AnAbsentListIsItsDefaultAndTheResolvedConfigSaysSo()
    {
        var (parsed, sweep) = Parse<double>("linear", "--sweep", "--data", "d", "--checkpoint", "c", "--out", "o");
        Assert.Empty(parsed.Errors);
        Assert.Equal(new[] { 0.1, 0.3, 1, 3, 10, 30, 100 }, sweep.Read(parsed));
        string resolved = RecipeArguments.Resolve(parsed);
        Assert.True(resolved.Contains("sweep: [0.1, 0.3, 1, 3, 10, 30, 100]"), resolved);
    }

    [Theory]
    [InlineData("0.4", "x")]
    [InlineData("0.4")]
    [InlineData("0.4,1,2")]
    public void ABadPairIsOneErrorNamingTheOption(params string[] values)
    {
        var (parsed, _) = Parse<double>("pretrain-dino", "--global-crops-scale", new[] { "--data", "d", "--out", "o", "--global-crops-scale" }.Concat(values).ToArray());
        var error = Assert.Single(parsed.Errors);
        Assert.StartsWith("--global-crops-scale", error.Message);
    }

    [Fact]
    public void NoHelpShowsAListDefaultTheParserRefuses()
    {
        foreach (string verb in new[] { "knn", "linear", "pretrain-dino", "finetune", "bench" })
        {
            var (code, output) = CliProcess.Attndistill(verb, "--help");
            Assert.True(code == 0, output);
            Assert.DoesNotMatch(@"\[default: [^\]]*\|", output);
        }
    }
}
