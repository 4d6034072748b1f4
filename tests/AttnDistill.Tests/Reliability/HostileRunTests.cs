using System.Security.Cryptography;
using AttnDistill.Checkpoints;
using AttnDistill.Tests.TestSupport;
using Xunit;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace AttnDistill.Tests.Reliability;

/// <summary>A finished one-epoch distillation run folder the resume cases start from (copied per test).</summary>
public sealed class ResumeFixture
{
    public BadConfigFixture Inputs { get; } = new();
    public string Data { get; }
    public string Run { get; }
    public (int Code, string Output) First { get; }

    public ResumeFixture()
    {
        Data = HostileFiles.Folder();
        Run = Path.Combine(Directory.CreateTempSubdirectory("resume-src").FullName, "run");
        First = BadConfigTests.RunCli(Args(Run));
    }

    public string[] Args(string outDir, params string[] changes)
    {
        var args = new List<string>
        {
            "distill", "--data", Data, "--teacher", Inputs.Teacher, "--student", "vit_tiny_patch16", "--student-patch", "7", "--student-depth", "1",
            "--student-heads", "2", "--student-dim", "32", "--image-size", "28", "--proj-layers", "1", "--epochs", "1", "--warmup-epochs", "0",
            "--batch-size", "4", "--workers", "1", "--threads", "1", "--out", outDir, "--resume",
        };
        for (int i = 0; i < changes.Length; i += 2)
        {
            int at = args.IndexOf(changes[i]);
            if (at >= 0) args[at + 1] = changes[i + 1];
            else { args.Add(changes[i]); args.Add(changes[i + 1]); }
        }
        return args.ToArray();
    }

    /// <summary>A copy of the finished run folder.</summary>
    public string Copy()
    {
        string dir = Path.Combine(Directory.CreateTempSubdirectory("resume-case").FullName, "run");
        Directory.CreateDirectory(dir);
        foreach (string file in Directory.GetFiles(Run).Where(p => Path.GetFileName(p) != AttnDistill.Runs.RunFolderLock.FileName)) File.Copy(file, Path.Combine(dir, Path.GetFileName(file)));
        return dir;
    }
}

/// <summary>Crafted checkpoints under --resume, changed settings under --resume, hostile recipes, --workers.</summary>
public class HostileRunTests(ResumeFixture f, ITestOutputHelper log) : IClassFixture<ResumeFixture>
{
    void AssertOneLineError((int Code, string Output) r, params string[] words) => CliErrors.AssertOneLine(log, r, words);

    /// <summary>Rewrites a checkpoint's tensors and metadata, then its data checksum, so the file is valid but crafted.</summary>
    internal static void Craft(string source, string target, Action<Dictionary<string, Tensor>, Dictionary<string, string>> edit)
    {
        var c = SafetensorsFile.Read(source);
        var tensors = new Dictionary<string, Tensor>(c.Tensors, StringComparer.Ordinal);
        var meta = new Dictionary<string, string>(c.Metadata, StringComparer.Ordinal);
        edit(tensors, meta);
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (var t in tensors.Values)
            if (t.NumberOfElements > 0) sha.AppendData(t.contiguous().bytes);
        meta["attndistill.data_sha256"] = Convert.ToHexStringLower(sha.GetHashAndReset());
        SafetensorsFile.Write(target, tensors, meta);
    }

    static void EditSections(Dictionary<string, string> meta, Action<Dictionary<string, string>> edit)
    {
        var sections = System.Text.Json.JsonSerializer.Deserialize<Dictionary<string, string>>(meta["attndistill.sections"])!;
        edit(sections);
        meta["attndistill.sections"] = System.Text.Json.JsonSerializer.Serialize(sections);
    }

    public static TheoryData<string> CraftedCases => new() { "no-optimizer", "scheduler-not-json", "rng-10-bytes", "epoch-minus-5", "optimizer-garbage", "binary-in-json" };

    [Theory]
    [MemberData(nameof(CraftedCases))]
    public void Case6_ResumeOnACraftedButChecksummedCheckpointGivesOneLineNamingIt(string kind)
    {
        Assert.True(f.First.Code == 0, f.First.Output);
        string dir = f.Copy();
        string crafted = Path.Combine(dir, "checkpoint-0005.ckpt");
        Craft(Path.Combine(dir, "checkpoint-0001.ckpt"), crafted, (t, meta) =>
        {
            switch (kind)
            {
                case "no-optimizer":
                    foreach (var k in t.Keys.Where(k => k.StartsWith("optimizer/", StringComparison.Ordinal)).ToList()) t.Remove(k);
                    EditSections(meta, s => s.Remove("optimizer"));
                    break;
                case "scheduler-not-json":
                    EditSections(meta, s => s["scheduler"] = "this is { not json");
                    break;
                case "rng-10-bytes":
                    t["rng/torch_cpu"] = zeros(10, ScalarType.Byte);
                    break;
                case "epoch-minus-5":
                    meta["attndistill.epoch"] = "-5";
                    break;
                case "optimizer-garbage":
                    t["optimizer/torchsharp_state"] = full(64, 7, ScalarType.Byte);
                    break;
                case "binary-in-json":
                    EditSections(meta, s => s["scheduler"] = "{\"optimizer_steps\": \"\u0001\u0002\u001b[2J\"}");
                    break;
            }
        });
        var r = BadConfigTests.RunCli(f.Args(dir, "--epochs", "6"));
        // Refused at load (epoch -5, non-JSON sections): passed over by name for the previous checkpoint, as any unreadable one.
        if (r.Code == 0) Assert.Contains("skipping unreadable checkpoint " + crafted, r.Output.Replace("\n", ""));
        else AssertOneLineError(r, "checkpoint-0005.ckpt");
        Assert.DoesNotContain('\u001b', r.Output);
    }

    [Fact]
    public void Case7_ResumeWithAnotherAggregationOrTeacherIsRefusedAndConfigIsKept()
    {
        string dir = f.Copy();
        string config = File.ReadAllText(Path.Combine(dir, "config.yaml"));
        AssertOneLineError(BadConfigTests.RunCli(f.Args(dir, "--aggregation", "max")), "aggregation");
        string other = Path.Combine(Path.GetDirectoryName(dir)!, "teacher2.safetensors");
        File.Copy(f.Inputs.Teacher, other);
        AssertOneLineError(BadConfigTests.RunCli(f.Args(dir, "--teacher", other)), "teacher");
        Assert.Equal(config, File.ReadAllText(Path.Combine(dir, "config.yaml")));
    }

    [Fact]
    public void Case7_ResumeWithAnotherLossWeightIsWarnedAndRecordedInTheHistory()
    {
        string dir = f.Copy();
        var r = BadConfigTests.RunCli(f.Args(dir, "--weight-attn", "0.2", "--epochs", "2"));
        log.WriteLine(r.Output);
        Assert.True(r.Code == 0, r.Output);
        Assert.Contains("weight-attn", r.Output);
        string config = File.ReadAllText(Path.Combine(dir, "config.yaml"));
        Assert.Contains("# history:", config);
        Assert.Contains("weight-attn: 0.1 -> 0.2", config);
        Assert.Contains("weight-attn: 0.2", config);
    }

    [Fact]
    public void Case7_ResumeWhereNoCheckpointIsReadableIsRefusedAndOverwritesNothing()
    {
        string dir = f.Copy();
        string ckpt = Path.Combine(dir, "checkpoint-0001.ckpt");
        var bytes = File.ReadAllBytes(ckpt);
        bytes[^5] ^= 0xff;   // data no longer matches its checksum
        File.WriteAllBytes(ckpt, bytes);
        AssertOneLineError(BadConfigTests.RunCli(f.Args(dir, "--epochs", "2")), "readable");
        Assert.Equal(bytes, File.ReadAllBytes(ckpt));
    }

    [Fact]
    public void Case7_ResumeOnAnEmptyFolderSaysItStartsANewRun()
    {
        string dir = Path.Combine(Directory.CreateTempSubdirectory("resume-empty").FullName, "run");
        var r = BadConfigTests.RunCli(f.Args(dir));
        Assert.True(r.Code == 0, r.Output);
        Assert.Contains("starting", r.Output, StringComparison.OrdinalIgnoreCase);
    }

    public static TheoryData<string, string> Recipes => new()
    {
        { "complex-key", "? [a, b]\n: 1\n" },
        { "verb-list", "verb: [knn]\n" },
        { "alias-nested", "description: &a [[1, 2], [3]]\nk: *a\n" },
        { "deep", "k: " + new string('[', 100_000) + new string(']', 100_000) + "\n" },
        { "huge-list", "k: [" + string.Concat(Enumerable.Repeat("1, ", 1_000_000)) + "1]\n" },
        { "mapping-value", "k: {a: 1}\n" },
    };

    /// <summary>In a separate process: before the fix some of these ended the runtime (stack overflow, exit 134).</summary>
    [Theory]
    [MemberData(nameof(Recipes))]
    public void Case8_HostileRecipesGiveOneBoundedLine(string name, string yaml)
    {
        string path = Path.Combine(Directory.CreateTempSubdirectory("recipe").FullName, name + ".yaml");
        File.WriteAllText(path, yaml);
        var r = CliProcess.Attndistill("knn", "--config", path, "--data", f.Data, "--checkpoint", f.Inputs.Teacher, "--out", Path.Combine(Path.GetDirectoryName(path)!, "run"));
        AssertOneLineError(r, "recipe");
    }

    [Fact]
    public void Case9_HugeWorkerCountsAreRefusedByTheFlag()
    {
        var r = CliProcess.Attndistill(f.Args(Path.Combine(Directory.CreateTempSubdirectory("workers").FullName, "run"), "--workers", "100000"));
        AssertOneLineError(r, "--workers");
    }
}
