using System.Diagnostics;
using AttnDistill.Checkpoints;
using AttnDistill.Cli;
using AttnDistill.Distillation;
using AttnDistill.Models;
using AttnDistill.Tests.TestSupport;
using AttnDistill.Training;
using Xunit;
using Xunit.Abstractions;

namespace AttnDistill.Tests.Reliability;

/// <summary>Valid inputs the bad settings are applied to: a teacher, an ImageFolder, a distill checkpoint.</summary>
public sealed class BadConfigFixture
{
    public string Dir { get; } = Directory.CreateTempSubdirectory("badcfg").FullName;
    public string Teacher { get; }
    public string Data { get; }
    public string DistillCheckpoint { get; }
    public string TextFile { get; }
    public string UnknownKeyRecipe { get; }

    public BadConfigFixture()
    {
        Teacher = KillHarness.MakeTeacher(Dir);   // 28 px, patch 4, width 64, 4 heads, 2 blocks
        Data = SyntheticImageFolder.Write(trainPerClass: 4, testPerClass: 2, size: 28);
        TextFile = Path.Combine(Dir, "notes.pth");
        File.WriteAllText(TextFile, "not a checkpoint");
        UnknownKeyRecipe = Path.Combine(Dir, "bad.yaml");
        File.WriteAllText(UnknownKeyRecipe, "verb: distill\nlearning-rate: 0.1\n");
        // A distillation checkpoint whose projector has 2 layers (3 evaluable with its norm).
        var cfg = new VitConfig { ImageSize = 28, PatchSize = 7, EmbedDim = 32, Depth = 2, NumHeads = 2 };
        using var student = new DistillStudent(cfg, 64, 2);
        DistillCheckpoint = Path.Combine(Dir, "checkpoint-0001.ckpt");
        var ckpt = new TrainingCheckpoint { Model = student.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value), ModelConfig = cfg, Epoch = 1 };
        ckpt.Save(DistillCheckpoint);
    }
}

/// <summary>
/// Invalid settings through the real CLI entry point (in process, output captured): each must end
/// in exit code 2 and one "error:" line naming the setting, without a stack trace, before any
/// training (no log.txt); then the library validators the CLI relies on.
/// </summary>
public class BadConfigTests(BadConfigFixture f, ITestOutputHelper log) : IClassFixture<BadConfigFixture>
{
    const string Distill = "distill", Knn = "knn";

    /// <summary>verb, the changed or added flags ("|"-separated "--flag value" pairs), a word the error must contain.</summary>
    public static TheoryData<string, string, string> Cases => new()
    {
        { Distill, "--lr -1", "--lr" },
        { Distill, "--lr 0", "--lr" },
        { Distill, "--blr 0", "--blr" },
        { Distill, "--blr -0.0001", "--blr" },
        { Distill, "--batch-size 0", "--batch-size" },
        { Distill, "--epochs 0", "--epochs" },
        { Distill, "--epochs ten", "--epochs" },
        { Distill, "--lr fast", "--lr" },
        { Distill, "--warmup-epochs -1", "--warmup-epochs" },
        { Distill, "--min-lr -1", "--min-lr" },
        { Distill, "--min-lr 1", "--min-lr" },
        { Distill, "--weight-decay -0.05", "--weight-decay" },
        { Distill, "--clip-grad -1", "--clip-grad" },
        { Distill, "--effective-batch 12", "--effective-batch" },
        { Distill, "--effective-batch 4", "--effective-batch" },
        { Distill, "--effective-batch -8", "--effective-batch" },
        { Distill, "--effective-batch 4096", "--effective-batch" },
        { Distill, "--image-size 30", "image size" },
        { Distill, "--image-size 0", "--image-size" },
        { Distill, "--student-heads 5", "heads" },
        { Distill, "--student-depth 0", "depth" },
        { Distill, "--student-dim 0", "width" },
        { Distill, "--student-patch 0", "patch size" },
        { Distill, "--student-dim 30|--student-heads 3|--student-pos-embed sincos", "sin-cos" },
        { Distill, "--student vit_huge_patch99", "preset" },
        { Distill, "--attn-T 0", "attn-T" },
        { Distill, "--attn-T -10", "attn-T" },
        { Distill, "--weight-attn -0.1", "weight-attn" },
        { Distill, "--weight-cls -1", "weight-cls" },
        { Distill, "--weight-cls 0|--weight-attn 0", "weight-cls" },
        { Distill, "--aggregation median", "--aggregation" },
        { Distill, "--aggregation none", "--aggregation" },
        { Distill, "--interpolate false", "--interpolate" },
        { Distill, "--proj-layers 0", "--proj-layers" },
        { Distill, "--proj-layers -1", "--proj-layers" },
        { Distill, "--proj-layers 17", "--proj-layers" },
        { Distill, "--attn-all-blocks|--student-depth 3", "attn-all-blocks" },
        { Distill, "--patch-token-align", "patch-token-align" },
        { Distill, "--method compress|--compress-queue 0", "--compress-queue" },
        { Distill, "--method compress|--compress-tau 0", "--compress-tau" },
        { Distill, "--method bogus", "--method" },
        { Distill, "--data /nonexistent/data", "--data" },
        { Distill, "--teacher /nonexistent/teacher.pth", "--teacher" },
        { Distill, "--teacher {text}", "--teacher" },
        { Distill, "--teacher-heads 5", "--teacher-heads" },
        { Distill, "--out {text}/run", "--out" },
        { Distill, "--device cuda", "--device" },
        { Distill, "--threads 0", "--threads" },
        { Distill, "--workers -1", "--workers" },
        { Distill, "--checkpoint-every 0", "--checkpoint-every" },
        { Distill, "--log-every 0", "--log-every" },
        { Distill, "--config /nonexistent/recipe.yaml", "recipe" },
        { Distill, "--config {recipe}", "learning-rate" },
        { Knn, "--k 0", "--k" },
        { Knn, "--k 10|-5", "--k" },
        { Knn, "--k 500", "--k" },
        { Knn, "--batch-size 0", "--batch-size" },
        { Knn, "--batch-size 1e3", "--batch-size" },
        { Knn, "--image-size 0", "--image-size" },
        { Knn, "--temperature 0", "--temperature" },
        { Knn, "--checkpoint /nonexistent/backbone.pth", "--checkpoint" },
        { Knn, "--checkpoint {text}", "--checkpoint" },
        { Knn, "--data /nonexistent/data", "--data" },
        { Knn, "--eval-layer -1", "--eval-layer" },
        { Knn, "--eval-layer 1", "--eval-layer" },
        { Knn, "--eval-layer 4|--checkpoint {ckpt}", "--eval-layer" },
        { Knn, "--label-fraction 0", "--label-fraction" },
        { Knn, "--label-fraction 1.5", "--label-fraction" },
        { Knn, "--label-file /nonexistent/labels.txt", "--label-file" },
        { Knn, "--workers -1", "--workers" },
        { Knn, "--threads -2", "--threads" },
        { Knn, "--out {text}/run", "--out" },
    };

    string[] BaseArgs(string verb, string outDir) => verb == Distill
        ? new[] { "distill", "--data", f.Data, "--teacher", f.Teacher, "--student", "vit_tiny_patch16", "--student-patch", "7", "--student-depth", "2",
                  "--student-heads", "2", "--student-dim", "32", "--image-size", "28", "--proj-layers", "2", "--epochs", "1", "--warmup-epochs", "0",
                  "--batch-size", "8", "--workers", "1", "--out", outDir }
        : new[] { "knn", "--data", f.Data, "--checkpoint", f.Teacher, "--image-size", "28", "--k", "2", "--batch-size", "8", "--workers", "1", "--out", outDir };

    /// <summary>The base arguments with each "--flag values..." of <paramref name="change"/> replacing or adding that flag.</summary>
    string[] Apply(string[] baseArgs, string change)
    {
        var args = baseArgs.ToList();
        foreach (string part in change.Split('|'))
        {
            var tokens = part.Replace("{text}", f.TextFile).Replace("{recipe}", f.UnknownKeyRecipe).Replace("{ckpt}", f.DistillCheckpoint)
                .Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (!tokens[0].StartsWith("--", StringComparison.Ordinal))
            {
                args.AddRange(tokens);   // more values of the previous flag (--k 10 -5)
                continue;
            }
            int at = args.IndexOf(tokens[0]);
            if (at >= 0)
            {
                int end = at + 1;
                while (end < args.Count && !args[end].StartsWith("--", StringComparison.Ordinal)) end++;
                args.RemoveRange(at, end - at);
            }
            args.AddRange(tokens);
        }
        return args.ToArray();
    }

    /// <summary>Runs the CLI's entry point in this process with the console captured.</summary>
    public static (int Code, string Output) RunCli(string[] args) => InProcessCli.Run(args);

    [Theory]
    [MemberData(nameof(Cases))]
    public void InvalidSettingGivesOneLineNamingItAndExitCode2BeforeAnyTraining(string verb, string change, string named)
    {
        string outDir = Path.Combine(Directory.CreateTempSubdirectory("badcfg-out").FullName, "run");
        var args = Apply(BaseArgs(verb, outDir), change);
        var (code, output) = RunCli(args);
        string[] lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Where(l => !l.StartsWith("loaded ", StringComparison.Ordinal) && !l.StartsWith("teacher:", StringComparison.Ordinal)).ToArray();
        string all = $"args: {string.Join(' ', args)}\noutput:\n{output}";
        Assert.True(code == 2, $"exit code {code}\n{all}");
        var errors = lines.Where(l => l.StartsWith("error:", StringComparison.Ordinal)).ToArray();
        Assert.True(errors.Length == 1, $"expected one error line\n{all}");
        log.WriteLine(errors[0]);
        Assert.Contains(named, errors[0], StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain(" at AttnDistill", output);
        Assert.DoesNotContain("Exception", output);
        Assert.DoesNotContain("Usage:", output);
        Assert.False(File.Exists(Path.Combine(outDir, "log.txt")), $"training started\n{all}");
    }

    [Fact]
    public void TheRealProcessExitsWith2AndPrintsNoStackTrace()
    {
        foreach (string change in new[] { "--batch-size 0", "--attn-T 0", "--threads 0" })
        {
            string outDir = Path.Combine(Directory.CreateTempSubdirectory("badcfg-proc").FullName, "run");
            var (code, output) = CliProcess.Attndistill(Apply(BaseArgs(Distill, outDir), change));
            Assert.True(code == 2, $"{change}: exit code {code}\n{output}");
            Assert.Single(output.Split('\n', StringSplitOptions.RemoveEmptyEntries), l => l.StartsWith("error:", StringComparison.Ordinal));
            Assert.DoesNotContain("   at ", output);
        }
    }

    public static TheoryData<string, string> LibraryCases => new()
    {
        { "TrainerOptions Beta1 1", "betas" },
        { "TrainerOptions Beta2 -0.1", "betas" },
        { "TrainerOptions MaxSkippedFraction -0.5", "skipped" },
        { "TrainerOptions LogEverySteps 0", "log" },
        { "TrainerOptions BaseLr NaN", "lr" },
        { "VitConfig MlpRatio 0", "mlp ratio" },
        { "VitConfig DropPathRate 1", "drop" },
        { "VitConfig InChans 0", "channels" },
        { "VitConfig LayerNormEps 0", "eps" },
        { "DistillLossOptions ClampMin 0.999", "clamp" },
        { "DistillLossOptions WeightAttn NaN", "weight-attn" },
        { "DistillLossOptions AttnTemperature Infinity", "attn-T" },
    };

    [Theory]
    [MemberData(nameof(LibraryCases))]
    public void LibraryValidatorsNameTheSetting(string setting, string named)
    {
        var parts = setting.Split(' ');
        double v = double.Parse(parts[2], System.Globalization.CultureInfo.InvariantCulture);
        Action validate = parts[0] switch
        {
            "TrainerOptions" => () => Set(new TrainerOptions(), parts[1], v).Validate(),
            "VitConfig" => () => Set(new VitConfig(), parts[1], v).Validate(),
            _ => () => Set(new DistillLossOptions(), parts[1], v).Validate(3, 3, 14, 14, 192, 192, true),
        };
        var ex = Assert.ThrowsAny<ArgumentException>(validate);
        Assert.Contains(named, ex.Message, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain('\n', ex.Message);
    }

    /// <summary>A copy of the record with one numeric property set (records are immutable; reflection keeps the table short).</summary>
    static T Set<T>(T record, string property, double value) where T : class
    {
        var clone = (T)typeof(T).GetMethod("<Clone>$")!.Invoke(record, null)!;
        var p = typeof(T).GetProperty(property)!;
        var type = Nullable.GetUnderlyingType(p.PropertyType) ?? p.PropertyType;
        p.SetValue(clone, type == typeof(int) ? (object)(int)value : value);
        return clone;
    }

    [Fact]
    public void DistillJobPrepareChecksTheDataFolderBeforeLoadingTheTeacher()
    {
        var cfg = new DistillJobConfig
        {
            DataRoot = "/nonexistent/data", TeacherPath = "/nonexistent/teacher.pth", Student = new VitConfig { ImageSize = 28, PatchSize = 7, EmbedDim = 32, Depth = 2, NumHeads = 2 },
            ProjectorLayers = 2, Trainer = new TrainerOptions(),
        };
        var ex = Assert.Throws<DirectoryNotFoundException>(() => DistillJob.Prepare(cfg, null));
        Assert.Contains("--data", ex.Message);
    }
}
