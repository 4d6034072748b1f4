using System.Runtime.CompilerServices;
using System.Text.Json;
using AttnDistill.Checkpoints;
using AttnDistill.Cli;
using Xunit;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace AttnDistill.Tests.Reliability;

/// <summary>
/// What the extended fuzzers (FuzzTests; bench/soak fuzz, fuzz-images, fuzz-recipes) found, one
/// test each; each failed on the code before its fix. The recipe cases after a "..." are guards:
/// they already held on this code.
/// </summary>
public class FuzzFindingsTests(ITestOutputHelper log)
{
    /// <summary>A run folder holding the probe's epoch-1 checkpoint with <paramref name="edit"/> applied (checksum recomputed).</summary>
    static string CraftedRun(Action<Dictionary<string, Tensor>, Dictionary<string, string>> edit)
    {
        string root = Directory.CreateTempSubdirectory("finding").FullName;
        string seed = ResumeProbe.WriteSeed(Path.Combine(root, "seed"));
        string dir = Path.Combine(root, "run");
        Directory.CreateDirectory(dir);
        HostileRunTests.Craft(seed, Path.Combine(dir, "checkpoint-0001.ckpt"), edit);
        return dir;
    }

    static void EditScheduler(Dictionary<string, string> meta, Action<Dictionary<string, JsonElement>> edit)
    {
        var sections = JsonSerializer.Deserialize<Dictionary<string, string>>(meta["attndistill.sections"])!;
        var s = JsonSerializer.Deserialize<Dictionary<string, JsonElement>>(sections["scheduler"])!;
        edit(s);
        sections["scheduler"] = JsonSerializer.Serialize(s);
        meta["attndistill.sections"] = JsonSerializer.Serialize(sections);
    }

    [Theory]
    [InlineData("4", true)]                       // the epoch's length: a mid-epoch checkpoint is never written there
    [InlineData("1000", true)]
    [InlineData("2147483648", true)]              // was cast to a negative start batch (ArgumentOutOfRangeException)
    [InlineData("4611686018427387904", true)]     // 2^62: step x batch wrapped around to 0 and resumed at the epoch's start
    [InlineData("5", false)]                      // a checkpoint without batches_per_epoch (older runs): this run's epoch decides
    [InlineData("4611686018427387904", false)]
    public void ResumeFromAStepPastTheEpochEndIsRefusedNamingTheFile(string step, bool withEpochLength)
    {
        string dir = CraftedRun((_, meta) =>
        {
            meta["attndistill.step"] = step;
            if (!withEpochLength) EditScheduler(meta, s => s.Remove("batches_per_epoch"));
        });
        var ex = Assert.Throws<CheckpointFormatException>(() => ResumeProbe.Resume(dir));
        log.WriteLine(ex.Message);
        Assert.Contains(Path.Combine(dir, "checkpoint-0001.ckpt"), ex.Message);
        Assert.Contains("past", ex.Message);
    }

    [Fact]
    public void ResumeFromAnHonestMidEpochStepStillWorks()
    {
        string dir = CraftedRun((_, meta) => meta["attndistill.step"] = "3");
        ResumeProbe.Resume(dir);
    }

    [Theory]
    [InlineData("missing")]
    [InlineData("shape")]
    [InlineData("int")]
    public void ResumeWithAModelSectionThatDoesNotFitNamesTheCheckpoint(string how)
    {
        string dir = CraftedRun((t, _) =>
        {
            string key = t.Keys.First(k => k.StartsWith("model/", StringComparison.Ordinal) && k.EndsWith("weight", StringComparison.Ordinal));
            if (how == "missing") t.Remove(key);
            else if (how == "shape") t[key] = zeros(3, 3);
            else t[key] = t[key].to(ScalarType.Int32);
        });
        var ex = Assert.ThrowsAny<Exception>(() => ResumeProbe.Resume(dir));
        log.WriteLine(ex.Message);
        Assert.True(ex is CheckpointMismatchException or CheckpointFormatException, ex.GetType().Name);
        Assert.Contains(Path.Combine(dir, "checkpoint-0001.ckpt"), ex.Message);
    }

    /// <summary>The seed's optimizer bytes loaded into the probe's own optimizer, <paramref name="poison"/> applied, saved again.</summary>
    static byte[] PoisonedOptimizerBytes(Dictionary<string, Tensor> tensors, Action<TorchSharp.Modules.AdamW.State, TorchSharp.Modules.AdamW.Options> poison)
    {
        var optimizer = ResumeProbe.Make(Directory.CreateTempSubdirectory("poison").FullName, resume: false, stopAfter: null).Optimizer;
        using (var r = new BinaryReader(new MemoryStream(tensors["optimizer/torchsharp_state"].data<byte>().ToArray())))
            optimizer.load_state_dict(r);
        var dict = optimizer.state_dict();
        poison((TorchSharp.Modules.AdamW.State)dict.State[0], (TorchSharp.Modules.AdamW.Options)dict.Options[0]);
        var buffer = new MemoryStream();
        using (var w = new BinaryWriter(buffer, System.Text.Encoding.UTF8, leaveOpen: true)) optimizer.save_state_dict(w);
        return buffer.ToArray();
    }

    [Theory]
    [InlineData("exp_avg_sq NaN")]      // a flipped exponent bit (the fuzzer's case): was "non-finite loss ... lower the lr" an epoch later
    [InlineData("exp_avg_sq negative")] // sqrt of it is NaN at the first step
    [InlineData("exp_avg inf")]
    [InlineData("step negative")]       // 1 - beta^-n is negative: the update changes sign
    [InlineData("lr NaN")]
    [InlineData("beta2 one")]
    public void ResumeWithAnOptimizerStateNoRunSavesIsRefusedNamingTheFile(string how)
    {
        string dir = CraftedRun((t, _) =>
        {
            byte[] bytes = PoisonedOptimizerBytes(t, (state, options) =>
            {
                using var nan = tensor(float.NaN);
                using var inf = tensor(float.PositiveInfinity);
                using var minusOne = tensor(-1f);
                switch (how)
                {
                    case "exp_avg_sq NaN": state.exp_avg_sq.view(-1)[0].copy_(nan); break;
                    case "exp_avg_sq negative": state.exp_avg_sq.view(-1)[0].copy_(minusOne); break;
                    case "exp_avg inf": state.exp_avg.view(-1)[0].copy_(inf); break;
                    case "step negative": state.step = -3; break;
                    case "lr NaN": options.LearningRate = double.NaN; break;
                    case "beta2 one": options.beta2 = 1.0; break;
                }
            });
            t["optimizer/torchsharp_state"] = tensor(bytes);
        });
        var ex = Assert.Throws<CheckpointFormatException>(() => ResumeProbe.Resume(dir));
        log.WriteLine(ex.Message);
        Assert.Contains(Path.Combine(dir, "checkpoint-0001.ckpt"), ex.Message);
        Assert.Contains("optimizer section holds", ex.Message);
    }

    [Fact]
    public void ResumeWithTheOptimizerStateSavedAgainUnchangedStillWorks()
    {
        string dir = CraftedRun((t, _) => t["optimizer/torchsharp_state"] = tensor(PoisonedOptimizerBytes(t, (_, _) => { })));
        ResumeProbe.Resume(dir);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    static WeakReference ParseOnce(string[] args)
    {
        var root = CliApp.BuildRoot();
        CliApp.Parse(root, args);
        return new WeakReference(root);
    }

    [Fact]
    public void CommandTreesAreNotKeptAliveAcrossInProcessInvocations()
    {
        // The budget options were static objects added to every root: each kept every tree it was
        // ever part of (an option holds its parents), so in-process invocations leaked them all.
        var first = CliApp.BuildRoot();
        var second = CliApp.BuildRoot();
        Assert.DoesNotContain(first.Options, o => second.Options.Contains(o));
        var weak = ParseOnce(new[] { "knn", "--max-image-pixels", "5" });
        for (int i = 0; i < 3 && weak.IsAlive; i++)
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
        }
        Assert.False(weak.IsAlive, "a command tree outlived its invocation");
        GC.KeepAlive(first);
        GC.KeepAlive(second);
    }

    [Theory]
    [InlineData("verb: knn\nk: [1]\n...\ngarbage: [\n")]
    [InlineData("verb: knn\n...\n---\nk: [3]\n")]
    [InlineData("verb: knn\n... trailing\n")]
    public void ContentAfterADocumentEndGivesOneLine(string yaml)
    {
        string dir = Directory.CreateTempSubdirectory("after-end").FullName;
        string path = Path.Combine(dir, "r.yaml");
        File.WriteAllText(path, yaml);
        string teacher = KillHarness.MakeTeacher(dir);
        var r = InProcessCli.Run(new[] { "knn", "--config", path, "--data", Path.Combine(dir, "none"), "--checkpoint", teacher, "--out", Path.Combine(dir, "out") });
        CliErrors.AssertOneLine(log, r);
    }
}
