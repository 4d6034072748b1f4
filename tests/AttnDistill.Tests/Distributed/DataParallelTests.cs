using AttnDistill.Distributed;
using AttnDistill.Runs;
using AttnDistill.Training;
using AttnDistill.Tests.TestSupport;
using Xunit;
using Xunit.Abstractions;
using static AttnDistill.Tests.Distributed.DataParallelScenarios;
using static TorchSharp.torch;

namespace AttnDistill.Tests.Distributed;

/// <summary>One mpirun -np 2 launch of <see cref="MpiWorker"/>, shared by the tests that read its results.</summary>
public sealed class TwoRankWorkerRun
{
    public TwoRankWorkerRun()
    {
        if (Mpirun.Path is null) return;
        Dir = Directory.CreateTempSubdirectory("mpi-worker").FullName;
        string dll = typeof(MpiWorker).Assembly.Location;
        (ExitCode, Output) = Mpirun.Run($"-np 2 dotnet \"{dll}\" mpi-worker \"{Dir}\"", TimeSpan.FromMinutes(3));
    }

    public string Dir { get; } = "";
    public int ExitCode { get; } = -1;
    public string Output { get; } = "";

    /// <summary>Skips without mpirun, fails when the job failed, else rank r's dump of a scenario.</summary>
    public Dictionary<string, Tensor> Result(int rank, string scenario)
    {
        Skip.If(Mpirun.Path is null, Mpirun.SkipReason);
        Assert.True(ExitCode == 0, $"mpirun exited with {ExitCode}:\n{Output}");
        return Load(Path.Combine(Dir, $"rank{rank}-{scenario}.safetensors"));
    }
}

/// <summary>The acceptance checks (a), (b) and resume under mpirun -np 2; (c) and (d) through the CLI are in <see cref="CliDataParallelTests"/>.</summary>
public class DataParallelTests(TwoRankWorkerRun run, ITestOutputHelper output) : IClassFixture<TwoRankWorkerRun>
{
    static string TempDir() => Directory.CreateTempSubdirectory("dp-ref").FullName;

    void AllClose(Dictionary<string, Tensor> expected, Dictionary<string, Tensor> actual, double atol, string what)
    {
        Assert.Equal(expected.Keys.Order(), actual.Keys.Order());
        double worst = expected.Max(kv => (kv.Value - actual[kv.Key]).abs().max().item<float>());
        output.WriteLine($"{what}: max |two ranks - one process| = {worst:g3}");
        foreach (var (k, v) in expected) TensorAssert.Close(v, actual[k], $"{what}: {k}", rtol: 0, atol: atol);
    }

    static void Identical(Dictionary<string, Tensor> expected, Dictionary<string, Tensor> actual, string what)
    {
        Assert.Equal(expected.Keys.Order(), actual.Keys.Order());
        foreach (var (k, v) in expected) Assert.True(v.equal(actual[k]).all().item<bool>(), $"{what}: {k} differs (max {(v.to_type(ScalarType.Float64) - actual[k].to_type(ScalarType.Float64)).abs().max().item<double>():g3})");
    }

    [SkippableFact]
    public void OneStepOfBatchBOnTwoRanksEqualsOneProcessWithBatch2B()
    {
        var twoRanks = run.Result(0, "one-step-sgd");
        var oneProcess = Train(SingleProcess.Instance, TempDir(), count: 2 * B, batch: 2 * B, effective: 0, epochs: 1, optimizer: Sgd);
        AllClose(oneProcess, twoRanks, 1e-6, "SGD step");
        Identical(twoRanks, run.Result(1, "one-step-sgd"), "rank 1 vs rank 0");
    }

    [SkippableFact]
    public void OneAdamWStepMatchesOneProcessAsClosely()
    {
        // AdamW's first step is lr * g / (|g| + eps): float noise in near-zero gradient elements
        // moves those weights by up to ~lr; the bound is the one TrainerTests uses for accumulation.
        var twoRanks = run.Result(0, "one-step-adamw");
        var oneProcess = Train(SingleProcess.Instance, TempDir(), count: 2 * B, batch: 2 * B, effective: 0, epochs: 1);
        output.WriteLine($"AdamW step: max |two ranks - one process| = {oneProcess.Max(kv => (kv.Value - twoRanks[kv.Key]).abs().max().item<float>()):g3}");
        foreach (var (k, v) in oneProcess) TensorAssert.Close(v, twoRanks[k], $"AdamW step: {k}", rtol: 1e-4, atol: 1e-5);
    }

    [SkippableFact]
    public void GradientAccumulationComposesWithAveraging()
    {
        // 2 ranks x batch B x 2 accumulation steps = one step over 4B images.
        var twoRanks = run.Result(0, "one-step-accum");
        var oneProcess = Train(SingleProcess.Instance, TempDir(), count: 4 * B, batch: 4 * B, effective: 0, epochs: 1, optimizer: Sgd);
        AllClose(oneProcess, twoRanks, 1e-6, "accumulated step");
    }

    [SkippableFact]
    public void BothRanksHoldIdenticalWeightsAfterTwentySteps()
    {
        var r0 = run.Result(0, "twenty");
        Identical(r0, run.Result(1, "twenty"), "after 20 steps");
        // And they trained: the weights moved away from the start.
        var start = new TinyVitClassifierTask(Seed, 0.1);
        Assert.Contains(start.Model.state_dict(), kv => !kv.Value.equal(r0[kv.Key]).all().item<bool>());
    }

    [SkippableFact]
    public void StopSeenByOneRankThenResumeEqualsUninterruptedRun()
    {
        for (int rank = 0; rank < 2; rank++)
            Identical(run.Result(rank, "straight"), run.Result(rank, "resumed"), $"rank {rank} resumed vs straight");
        Identical(run.Result(0, "resumed"), run.Result(1, "resumed"), "rank 1 vs rank 0");
    }

    [SkippableFact]
    public void OneProcessResumesATwoRankCheckpointAtTheSameImage()
    {
        // The 2-rank run stopped after 4 batches of 8 per rank: 64 images of epoch 0.
        run.Result(0, "resumed");
        string mid = Path.Combine(run.Dir, "runs", "stopped", "checkpoint-0000-000004.ckpt");
        Assert.True(File.Exists(mid));
        foreach (var (batch, expectedBatch) in new[] { (2 * B, 4), (B, 8) })
        {
            string dir = TempDir();
            File.Copy(mid, Path.Combine(dir, Path.GetFileName(mid)));
            var logs = new List<string>();
            var task = new TinyVitClassifierTask(Seed, 0.1);
            var result = new AttnDistill.Training.Trainer(task, Loader(20 * B, batch, SingleProcess.Instance), Options(2, batch),
                new TrainerRun { Context = new RunContext { OutDir = dir, Log = logs.Add, Distributed = SingleProcess.Instance }, TensorBoard = false, Resume = true, StopAfterEpochs = 1 }).Run();
            Assert.Contains(logs, l => l.Contains($"epoch 0, batch {expectedBatch}"));
            // 4 optimizer steps done by the two ranks, then the rest of epoch 0 at this batch size.
            Assert.Equal(4 + (20 * B / batch - expectedBatch), result.OptimizerSteps);
        }
        // 64 images are not a whole number of batches of 24: refused with the reason.
        string odd = TempDir();
        File.Copy(mid, Path.Combine(odd, Path.GetFileName(mid)));
        var ex = Assert.Throws<AttnDistill.Checkpoints.CheckpointFormatException>(() =>
            new AttnDistill.Training.Trainer(new TinyVitClassifierTask(Seed, 0), Loader(20 * B, 3 * B, SingleProcess.Instance), Options(2, 3 * B),
                new TrainerRun { Context = new RunContext { OutDir = odd, Distributed = SingleProcess.Instance }, TensorBoard = false, Resume = true }).Run());
        Assert.Contains("number of processes", ex.Message);
    }

    [SkippableFact]
    public void OnlyRankZeroWritesTheTrainerFiles()
    {
        // Rank 1 wrote only its test dumps; the run folders (logs, checkpoints) are rank 0's.
        run.Result(0, "twenty");
        string runs = Path.Combine(run.Dir, "runs");
        Assert.True(File.Exists(Path.Combine(runs, "twenty", "log.txt")));
        var lines = File.ReadAllLines(Path.Combine(runs, "twenty", "log.txt"));
        Assert.Equal(2, lines.Count(l => l.Contains("train_ce")));                   // one epoch line per epoch, not per rank
        Assert.Equal(40, lines.Count(l => l.Contains("\"batch\"")));                 // 20 batches x 2 epochs
    }

    [SkippableFact]
    public void ShardedFeatureExtractionGathersTheWholeSet()
    {
        var oneProcess = Features(SingleProcess.Instance);
        for (int rank = 0; rank < 2; rank++)
        {
            var shard = run.Result(rank, "features");
            Identical(new() { ["labels"] = oneProcess["labels"], ["indices"] = oneProcess["indices"] },
                new() { ["labels"] = shard["labels"], ["indices"] = shard["indices"] }, $"rank {rank} rows");
            TensorAssert.Close(oneProcess["features"], shard["features"], $"rank {rank} features", rtol: 0, atol: 1e-5);
        }
    }
}
