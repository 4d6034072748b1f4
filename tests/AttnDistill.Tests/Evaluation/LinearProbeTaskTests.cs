using AttnDistill.Data;
using AttnDistill.Data.Transforms;
using AttnDistill.Evaluation;
using AttnDistill.Optim;
using AttnDistill.Runs;
using AttnDistill.Training;
using TorchSharp;
using AttnDistill.Tests.TestSupport;
using Xunit;
using static TorchSharp.torch;

namespace AttnDistill.Tests.Evaluation;

public class LinearProbeTaskTests
{
    [Fact]
    public void Trainer_runs_lars_sweep_on_augmented_features_and_leaves_the_backbone_frozen()
    {
        using var scope = NewDisposeScope();
        string dir = Path.Combine(Path.GetTempPath(), "attndistill-linprobe-" + Guid.NewGuid().ToString("N"));
        try
        {
            using var vit = LinearProbeTests.TinyVit();
            var before = vit.parameters().Select(p => p.detach().clone()).ToArray();
            using var sweep = new LinearProbeSweep(32, 4, new[] { 0.05, 0.5 });
            var headBefore = sweep.Heads[1].Linear.weight!.detach().clone();
            var task = new LinearProbeTask(vit, sweep, referenceBaseLr: 0.05);
            var loader = new DataLoader(new ClassTemplateDataset(64, 4), TransformPresets.Train(16),
                new DataLoaderOptions { BatchSize = 16, Workers = 0, DropLast = true });
            var options = new TrainerOptions { Epochs = 2, WarmupEpochs = 1, BatchSize = 16, BaseLr = 0.05, WeightDecay = 0, LogEverySteps = 100 };
            var trainer = new Trainer(task, loader, options, new TrainerRun { Context = new RunContext { OutDir = dir }, TensorBoard = false }, LinearProbeTask.LarsFactory);
            Assert.IsType<Lars>(trainer.Optimizer);
            Assert.Equal(new[] { 0.05 * 16 / 256, 0.5 * 16 / 256 },
                trainer.Optimizer.ParamGroups.Select(g => Math.Round(g.LearningRate, 12)));
            var result = trainer.Run();
            Assert.Equal(2, result.EpochsDone);
            Assert.Equal(8, result.OptimizerSteps);
            Assert.NotNull(result.LastCheckpoint);
            Assert.False(sweep.Heads[1].Linear.weight!.allclose(headBefore));
            foreach (var (p, b) in vit.parameters().Zip(before)) Assert.True(p.detach().allclose(b, rtol: 0, atol: 0), "the frozen backbone changed");
        }
        finally
        {
            if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        }
    }
}
