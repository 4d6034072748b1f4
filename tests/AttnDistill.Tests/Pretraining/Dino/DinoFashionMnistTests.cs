using System.Text.Json;
using AttnDistill.Evaluation;
using AttnDistill.Models;
using AttnDistill.Pretraining.Dino;
using AttnDistill.Tests.TestSupport;
using AttnDistill.Training;
using Xunit;

namespace AttnDistill.Tests.Pretraining.Dino;

/// <summary>
/// A few hundred DINO steps on real images lower the DINO loss clearly. k-NN is measured against
/// the same encoder at initialisation but not yet required to beat it: at this scale (2,000
/// images, width 64, about 150 steps) no setting tried lifted it by more than a point (docs/DINO.md).
/// </summary>
public class DinoFashionMnistTests
{
    [SkippableFact]
    public void AFewHundredStepsLowerTheLossAndLiftKnn()
    {
        RealData.RequireFashionMnist();
        string data = FashionMnistSlice.Create(2000, 1000);
        string outDir = Directory.CreateTempSubdirectory("dino-fmnist").FullName;
        var cfg = new DinoPretrainJobConfig
        {
            DataRoot = data,
            Backbone = new VitConfig { ImageSize = 28, PatchSize = 4, EmbedDim = 64, Depth = 2, NumHeads = 2, DropPathRate = 0.1 },
            Head = new DinoHeadConfig { OutDim = 1024, HiddenDim = 128, BottleneckDim = 32, UseBn = true },
            Crops = new DinoCropConfig { GlobalSize = 28, LocalSize = 12, LocalCropsNumber = 4 },
            Dino = new DinoOptions { Lr = 0.001, WarmupEpochs = 1, MomentumTeacher = 0.99, WeightDecayEnd = 0.04, WarmupTeacherTemp = 0.02, TeacherTemp = 0.02 },
            Trainer = new TrainerOptions { Epochs = 5, BatchSize = 64, Seed = 0, LogEverySteps = 50 },
            Workers = 2,
        };
        var result = DinoPretrainJob.Run(cfg, AttnDistill.Runs.RunContext.Cpu(outDir));
        Assert.True(result.Train.OptimizerSteps >= 150, $"{result.Train.OptimizerSteps} steps");
        var epochLosses = File.ReadLines(Path.Combine(outDir, "log.txt"))
            .Select(l => JsonDocument.Parse(l).RootElement)
            .Where(e => e.TryGetProperty("train_loss", out _))
            .Select(e => e.GetProperty("train_loss").GetDouble()).ToArray();
        Assert.Equal(cfg.Trainer.Epochs, epochLosses.Length);
        Assert.True(epochLosses[^1] < epochLosses[0] - 1.5, $"DINO loss per epoch: {string.Join(", ", epochLosses.Select(l => l.ToString("F3")))}");

        double Knn20(string checkpoint, string name) =>
            KnnJob.Run(new KnnJobConfig { Checkpoint = checkpoint, DataRoot = data, ImageSize = 28, Ks = new[] { 20 }, BatchSize = 250, Workers = 2 }, AttnDistill.Runs.RunContext.Cpu(Path.Combine(outDir, name)))[0].Top1;
        double trained = Knn20(result.TeacherPath, "knn");
        double init = Knn20(Path.Combine(outDir, DinoPretrainJob.InitialTeacherFile), "knn-init");
        // Both well above chance (10 %) and the trained teacher not collapsed below its initialisation.
        Assert.True(init > 30 && trained > init - 5, $"k-NN top-1 (k 20): trained teacher {trained:F1} %, same encoder at init {init:F1} %");
    }
}
