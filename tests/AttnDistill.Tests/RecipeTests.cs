using AttnDistill.Cli;
using Xunit;

namespace AttnDistill.Tests;

/// <summary>Every committed recipe (every row of every family) parses for the verb it names.</summary>
public class RecipeTests
{
    static string RecipesDir
    {
        get
        {
            var dir = new DirectoryInfo(AppContext.BaseDirectory);
            while (dir is not null && !Directory.Exists(Path.Combine(dir.FullName, "recipes"))) dir = dir.Parent;
            return Path.Combine(dir?.FullName ?? throw new DirectoryNotFoundException("recipes/ not found above the test output"), "recipes");
        }
    }

    public static IEnumerable<object[]> Runs()
    {
        foreach (var file in Directory.GetFiles(RecipesDir, "*.yaml").Order())
        {
            var rows = RecipeArguments.Rows(file);
            if (rows.Count == 0) yield return new object[] { Path.GetFileName(file), "" };
            foreach (var row in rows) yield return new object[] { Path.GetFileName(file), row };
        }
    }

    [Theory]
    [MemberData(nameof(Runs))]
    public void RecipeRowParsesForItsVerb(string file, string row)
    {
        string path = Path.Combine(RecipesDir, file);
        string verb = RecipeArguments.Verb(path) ?? throw new Xunit.Sdk.XunitException($"{file} does not name its verb");
        string spec = row.Length > 0 ? $"{path}#{row}" : path;
        var args = new List<string> { verb, "--config", spec, "--out", Path.GetTempPath() };
        // Evaluation recipes are applied to a checkpoint given on the command line.
        if (verb is "knn" or "linear" or "finetune") args.AddRange(new[] { "--checkpoint", "backbone.safetensors" });
        var parsed = CliApp.Parse(CliApp.BuildRoot(), args.ToArray());
        Assert.True(parsed.Errors.Count == 0, string.Join("; ", parsed.Errors.Select(e => e.Message)));
    }

    /// <summary>Table 7: the ImageNet-Subset students of Table 10 (like their MAE teacher) use fixed sin-cos position tables.</summary>
    [Fact]
    public void Table10StudentsHaveSinCosPositionTables()
    {
        var files = Directory.GetFiles(RecipesDir, "table10-*.yaml").Order().ToList();
        Assert.NotEmpty(files);
        foreach (string path in files)
            foreach (string row in RecipeArguments.Rows(path))
            {
                var parsed = CliApp.Parse(CliApp.BuildRoot(), new[] { "distill", "--config", $"{path}#{row}", "--out", Path.GetTempPath() });
                Assert.True(parsed.Errors.Count == 0, string.Join("; ", parsed.Errors.Select(e => e.Message)));
                string student = parsed.GetValue<string>("--student")!;
                var pe = parsed.GetValue<AttnDistill.Models.PosEmbedKind?>("--student-pos-embed");
                bool sinCos = (pe ?? AttnDistill.Models.VitPresets.Get(student).PosEmbed) == AttnDistill.Models.PosEmbedKind.SinCos;
                Assert.True(sinCos, $"{Path.GetFileName(path)}#{row}: student {student} (pos embed {pe?.ToString() ?? "the preset's"}) is not sin-cos");
            }
    }

    [Fact]
    public void AFamilyWithoutARowNamesItsRowsAndAnUnknownKeyIsNamed()
    {
        string family = Path.Combine(RecipesDir, "table10-b-aggregation.yaml");
        var ex = Assert.Throws<RecipeException>(() => CliApp.Parse(CliApp.BuildRoot(), new[] { "distill", "--config", family }));
        Assert.Contains("product", ex.Message);
        string bad = Path.Combine(Directory.CreateTempSubdirectory("recipe").FullName, "bad.yaml");
        File.WriteAllText(bad, "verb: distill\nweight-atn: 0.1\n");
        Assert.Contains("weight-atn", Assert.Throws<RecipeException>(() => CliApp.Parse(CliApp.BuildRoot(), new[] { "distill", "--config", bad })).Message);
        File.WriteAllText(bad, "verb: knn\n");
        Assert.Contains("attndistill knn", Assert.Throws<RecipeException>(() => CliApp.Parse(CliApp.BuildRoot(), new[] { "distill", "--config", bad })).Message);
    }
}
