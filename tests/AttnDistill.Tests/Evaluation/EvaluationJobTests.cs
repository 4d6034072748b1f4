using System.Text.Json.Nodes;
using AttnDistill.Checkpoints;
using AttnDistill.Distillation;
using AttnDistill.Evaluation;
using AttnDistill.Models;
using AttnDistill.Tests.TestSupport;
using AttnDistill.Training;
using TorchSharp;
using AttnDistill.Runs;
using Xunit;
using static TorchSharp.torch;

namespace AttnDistill.Tests.Evaluation;

/// <summary>The evaluation commands end to end on a small ImageFolder written by the test.</summary>
public class EvaluationJobTests
{
    static readonly VitConfig Vit = new() { ImageSize = 16, PatchSize = 4, EmbedDim = 32, Depth = 2, NumHeads = 2 };
    static readonly Lazy<string> Folder = new(() => SyntheticImageFolder.Write(trainPerClass: 24, testPerClass: 8));

    static string Backbone(int seed = 3)
    {
        torch.manual_seed(seed);
        using var vit = new VisionTransformer(Vit);
        string path = Path.Combine(Directory.CreateTempSubdirectory("eval-backbone").FullName, "backbone.safetensors");
        BackboneExport.SaveSafetensors(vit, path, Vit);
        return path;
    }

    static string OutDir() => Directory.CreateTempSubdirectory("eval-out").FullName;

    [Fact]
    public void KnnWritesMetricsCachesFeaturesAndHonoursTheLabelFraction()
    {
        string ckpt = Backbone(), outDir = OutDir(), cache = Path.Combine(outDir, "cache");
        var cfg = new KnnJobConfig { Checkpoint = ckpt, DataRoot = Folder.Value, ImageSize = 16, Ks = new[] { 5, 10 }, BatchSize = 32, FeatureCacheDir = cache };
        var first = KnnJob.Run(cfg, RunContext.Cpu(outDir));
        Assert.Equal(2, Directory.GetFiles(cache, "features-*.pt").Length);          // train and test
        var again = KnnJob.Run(cfg, RunContext.Cpu(outDir));                                                 // from the cache
        Assert.Equal(first.Select(r => r.Top1), again.Select(r => r.Top1));
        var metrics = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "metrics.json")))!;
        Assert.Equal(2, metrics["knn"]!.AsArray().Count);
        Assert.Equal(96, metrics["knn_setup"]!["train_images"]!.GetValue<int>());

        KnnJob.Run(cfg with { Labels = new LabelSelection { Fraction = 0.25, Seed = 1 } }, RunContext.Cpu(outDir));
        metrics = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "metrics.json")))!;
        Assert.Equal(24, metrics["knn_setup"]!["train_images"]!.GetValue<int>());     // 6 of each class's 24
        Assert.Contains("fraction 0.25", metrics["knn_setup"]!["labels"]!.GetValue<string>());
        // The subset is saved in the run and, read back with --label-file, selects the same images.
        string list = Path.Combine(outDir, LabelSelection.RunFileName);
        Assert.Equal(24, File.ReadAllLines(list).Count(l => l.Length > 0));
        var again24 = KnnJob.Run(cfg with { Labels = new LabelSelection { FileList = list } }, RunContext.Cpu(OutDir()));
        Assert.Equal(24, JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "metrics.json")))!["knn_setup"]!["train_images"]!.GetValue<int>());
        var byFraction = KnnJob.Run(cfg with { Labels = new LabelSelection { Fraction = 0.25, Seed = 1 } }, RunContext.Cpu(OutDir()));
        Assert.Equal(byFraction.Select(r => r.Top1), again24.Select(r => r.Top1));
    }

    [Fact]
    public void CachedLinearProbeBeatsChanceAndSavesTheBestHead()
    {
        string outDir = OutDir();
        var result = LinearJob.Run(new LinearJobConfig
        {
            Checkpoint = Backbone(), DataRoot = Folder.Value, ImageSize = 16, Augment = false,
            Trainer = new TrainerOptions { Epochs = 30, WarmupEpochs = 2, BatchSize = 32 }, BaseLrs = new[] { 1.0, 10.0, 100.0 },
        }, RunContext.Cpu(outDir));
        Assert.Equal(3, result.Sweep.Count);
        Assert.True(result.Best.Top1 > 60, $"best head top-1 {result.Best.Top1} % on a 4-class set (chance 25 %)");
        var head = SafetensorsFile.Read(Path.Combine(outDir, "linear_head.safetensors"));
        Assert.Contains("1.weight", head.Tensors.Keys);
        Assert.Equal(new long[] { 4, 32 }, head.Tensors["1.weight"].shape);
        Assert.NotNull(JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "metrics.json")))!["linear"]!["best"]);
    }

    [Fact]
    public void AugmentedLinearProbeRunsOnTheTrainerAndResumes()
    {
        string outDir = OutDir();
        var cfg = new LinearJobConfig
        {
            Checkpoint = Backbone(), DataRoot = Folder.Value, ImageSize = 16, Augment = true,
            Trainer = new TrainerOptions { Epochs = 2, WarmupEpochs = 1, BatchSize = 32 }, BaseLrs = new[] { 0.1, 1.0 },
        };
        var result = LinearJob.Run(cfg, RunContext.Cpu(outDir));
        Assert.NotEmpty(CheckpointFiles.List(outDir));
        // Resuming a finished run trains nothing more and evaluates the same heads.
        var again = LinearJob.Run(cfg with { Resume = true }, RunContext.Cpu(outDir));
        Assert.Equal(result.Sweep.Select(h => h.Top1), again.Sweep.Select(h => h.Top1));
    }

    [Fact]
    public void FinetuningLearnsTheSyntheticClassesAndExportsTimmNames()
    {
        string outDir = OutDir();
        var result = FinetuneJob.Run(new FinetuneJobConfig
        {
            Checkpoint = Backbone(), DataRoot = Folder.Value, ImageSize = 16, DropPath = 0.1, LayerDecay = 0.75,
            Trainer = new TrainerOptions { Epochs = 6, WarmupEpochs = 1, BatchSize = 16, Lr = 2e-3, Beta2 = 0.999 },
        }, RunContext.Cpu(outDir));
        Assert.True(result.Best.Top1 > 50, $"fine-tuned top-1 {result.Best.Top1} % (chance 25 %)");
        var log = File.ReadAllLines(Path.Combine(outDir, "log.txt")).Select(l => JsonNode.Parse(l)!).ToList();
        Assert.Equal(6, log.Count(l => l["top1"] is not null));                      // validated every epoch
        var keys = CheckpointReader.ReadPickle(Path.Combine(outDir, "finetuned.pth")).Keys.Cast<string>().ToList();
        Assert.Contains("head.weight", keys);
        Assert.Contains("blocks.1.attn.qkv.weight", keys);
    }

    [Fact]
    public void FinetuningHeadsAndMixingAreRecordedAndExportedWithTimmNames()
    {
        FinetuneJobConfig Cfg(bool globalPool) => new()
        {
            Checkpoint = Backbone(), DataRoot = Folder.Value, ImageSize = 16, GlobalPool = globalPool,
            Mixup = new AttnDistill.Data.Mixing.MixupOptions { MixupAlpha = 0.8, CutmixAlpha = 1.0, Mode = AttnDistill.Data.Mixing.MixupMode.Elem }, EraseProbability = 0.5,
            Trainer = new TrainerOptions { Epochs = 1, WarmupEpochs = 0, BatchSize = 16, Lr = 1e-3, Beta2 = 0.999 },
        };
        string pooled = OutDir(), cls = OutDir();
        FinetuneJob.Run(Cfg(true), RunContext.Cpu(pooled));
        FinetuneJob.Run(Cfg(false), RunContext.Cpu(cls));
        var pooledKeys = CheckpointReader.ReadPickle(Path.Combine(pooled, "finetuned.pth")).Keys.Cast<string>().ToList();
        var clsKeys = CheckpointReader.ReadPickle(Path.Combine(cls, "finetuned.pth")).Keys.Cast<string>().ToList();
        // MAE's global-pool model: fc_norm and no final norm; DINO/DeiT's CLS model: the final norm and no fc_norm.
        Assert.Contains("fc_norm.weight", pooledKeys);
        Assert.DoesNotContain("norm.weight", pooledKeys);
        Assert.Contains("norm.weight", clsKeys);
        Assert.DoesNotContain("fc_norm.weight", clsKeys);
        var metrics = JsonNode.Parse(File.ReadAllText(Path.Combine(pooled, "metrics.json")))!["finetune"]!;
        Assert.StartsWith("global_pool", metrics["head"]!.GetValue<string>());
        Assert.Contains("mode elem", metrics["mixup"]!.GetValue<string>());
        Assert.Contains("pixel", metrics["random_erasing"]!.GetValue<string>());
    }

    /// <summary>Cancels the run when the first epoch's last batch is reported: the trainer checkpoints at the epoch's end and returns.</summary>
    sealed class StopAfterFirstEpoch(CancellationTokenSource stop) : IRunProgress
    {
        public void Training(TrainProgress p) { if (p.Epoch == 0 && p.Batch == p.BatchesPerEpoch) stop.Cancel(); }
        public void Stage(string stage, int done, int total) { }
    }

    [Fact]
    public void FinetuningWithMixingResumesBitExactlyAndRefusesAnOddBatch()
    {
        var cfg = new FinetuneJobConfig
        {
            Checkpoint = Backbone(), DataRoot = Folder.Value, ImageSize = 16, DropPath = 0.1, EvalEvery = 10, EraseProbability = 0.5,
            Mixup = new AttnDistill.Data.Mixing.MixupOptions { Mode = AttnDistill.Data.Mixing.MixupMode.Pair },
            Trainer = new TrainerOptions { Epochs = 2, WarmupEpochs = 1, BatchSize = 16, Lr = 1e-3, Beta2 = 0.999, Seed = 4 },
        };
        string straight = OutDir(), resumed = OutDir();
        FinetuneJob.Run(cfg, RunContext.Cpu(straight));
        using (var stop = new CancellationTokenSource())
        {
            var stopped = Assert.Throws<TrainingStoppedException>(() => FinetuneJob.Run(cfg, RunContext.Cpu(resumed) with { Stop = stop.Token, Progress = new StopAfterFirstEpoch(stop) }));
            Assert.Contains("--resume", stopped.Message);
        }
        FinetuneJob.Run(cfg with { Resume = true }, RunContext.Cpu(resumed));
        // Mixing and erasing draw from torch's generator, which checkpoints carry: 1 + 1 epochs equal 2.
        var a = CheckpointReader.ReadPickle(Path.Combine(straight, "finetuned.pth"));
        var b = CheckpointReader.ReadPickle(Path.Combine(resumed, "finetuned.pth"));
        foreach (string key in a.Keys.Cast<string>())
            Assert.True(((Tensor)a[key]!).eq((Tensor)b[key]!).all().item<bool>(), $"{key} differs after resume");
        var ex = Assert.Throws<ArgumentException>(() => FinetuneJob.Run(cfg with { Trainer = cfg.Trainer with { BatchSize = 5 } }, RunContext.Cpu(OutDir())));
        Assert.Contains("--batch-size", ex.Message);
    }

    [Fact]
    public void ModelEmaIsEvaluatedSavedAndResumedBitExactly()
    {
        var cfg = new FinetuneJobConfig
        {
            Checkpoint = Backbone(), DataRoot = Folder.Value, ImageSize = 16, DropPath = 0.1, EvalEvery = 1, Mixup = null, EraseProbability = 0,
            ModelEma = true, ModelEmaDecay = 0.9,
            Trainer = new TrainerOptions { Epochs = 2, WarmupEpochs = 1, BatchSize = 16, Lr = 1e-3, Beta2 = 0.999, Seed = 4 },
        };
        string straight = OutDir(), resumed = OutDir();
        FinetuneJob.Run(cfg, RunContext.Cpu(straight));
        using (var stop = new CancellationTokenSource())
            Assert.Throws<OperationCanceledException>(() => FinetuneJob.Run(cfg, RunContext.Cpu(resumed) with { Stop = stop.Token, Progress = new StopAfterFirstEpoch(stop) }));
        FinetuneJob.Run(cfg with { Resume = true }, RunContext.Cpu(resumed));
        var a = CheckpointReader.ReadPickle(Path.Combine(straight, "finetuned_ema.pth"));
        var b = CheckpointReader.ReadPickle(Path.Combine(resumed, "finetuned_ema.pth"));
        var model = CheckpointReader.ReadPickle(Path.Combine(straight, "finetuned.pth"));
        Assert.Equal(model.Keys.Cast<string>().Order(), a.Keys.Cast<string>().Order());
        foreach (string key in a.Keys.Cast<string>())
            Assert.True(((Tensor)a[key]!).eq((Tensor)b[key]!).all().item<bool>(), $"EMA {key} differs after resume");
        // The average lags the model: the head moved from its init, the EMA less so.
        Assert.False(((Tensor)a["head.weight"]!).equal((Tensor)model["head.weight"]!).all().item<bool>());
        using var metrics = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(straight, "metrics.json")));
        Assert.InRange(metrics.RootElement.GetProperty("finetune_ema").GetProperty("top1").GetDouble(), 0, 100);
        Assert.Contains("\"kind\":\"finetune-ema\"", File.ReadAllText(Path.Combine(straight, "log.txt")));
    }

    [Fact]
    public void ABlrSweepRunsOneFineTuningPerValueAndWritesOneTable()
    {
        string outDir = OutDir();
        var (code, output) = CliProcess.Attndistill("finetune", "--data", Folder.Value, "--checkpoint", Backbone(), "--image-size", "16",
            "--epochs", "1", "--warmup-epochs", "0", "--batch-size", "16", "--blr", "1e-4,1e-3", "--mixup", "0", "--cutmix", "0", "--workers", "0", "--out", outDir);
        Assert.True(code == 0, output);
        string table = File.ReadAllText(Path.Combine(outDir, "blr-sweep.md"));
        Assert.Contains("| 0.0001", table);
        Assert.Contains("| 0.001", table);
        Assert.Contains("(best)", table);
        foreach (string blr in new[] { "0.0001", "0.001" })
        {
            string run = Path.Combine(outDir, "blr-" + blr);
            Assert.True(File.Exists(Path.Combine(run, "finetuned.pth")), run);
            Assert.Contains($"blr: {blr}\n", File.ReadAllText(Path.Combine(run, "config.yaml")));
        }
        using var metrics = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "metrics.json")));
        Assert.Equal(2, metrics.RootElement.GetProperty("finetune_blr_sweep").GetProperty("runs").GetArrayLength());
        var (lrCode, lrOutput) = CliProcess.Attndistill("finetune", "--data", Folder.Value, "--checkpoint", Backbone(), "--blr", "1e-4,1e-3", "--lr", "0.1", "--out", OutDir());
        Assert.Equal(2, lrCode);
        Assert.Contains("--lr", lrOutput);
    }

    [Fact]
    public void AFineTunedGlobalPoolClassifierIsFineTunedFurtherFromItsOwnHead()
    {
        // finetuned.pth is a plain state dict (timm's names), so its heads come from the width table: a standard width.
        var standard = new VitConfig { ImageSize = 16, PatchSize = 8, EmbedDim = 192, Depth = 1, NumHeads = 3 };
        torch.manual_seed(3);
        string backbone = Path.Combine(Directory.CreateTempSubdirectory("eval-backbone").FullName, "backbone.safetensors");
        using (var vit = new VisionTransformer(standard)) BackboneExport.SaveSafetensors(vit, backbone, standard);
        var cfg = new FinetuneJobConfig
        {
            Checkpoint = backbone, DataRoot = Folder.Value, ImageSize = 16, DropPath = 0, EvalEvery = 1, Mixup = null, EraseProbability = 0, GlobalPool = true,
            Trainer = new TrainerOptions { Epochs = 1, WarmupEpochs = 0, BatchSize = 16, Lr = 1e-3, Beta2 = 0.999, Seed = 4 },
        };
        string first = OutDir();
        var a = FinetuneJob.Run(cfg, RunContext.Cpu(first));
        // Continue from the fine-tuned classifier with no training at all (lr 0 would be refused; one epoch at a negligible lr):
        // its accuracy is the first run's, which a fresh head (trunc-normal 2e-5) would not give.
        var log = new List<string>();
        var b = FinetuneJob.Run(cfg with { Checkpoint = Path.Combine(first, "finetuned.pth"), Trainer = cfg.Trainer with { Lr = 1e-12, MinLr = 0 } }, RunContext.Cpu(OutDir(), log.Add));
        Assert.Contains(log, l => l.Contains("fc_norm.weight, fc_norm.bias, head loaded"));
        Assert.Equal(a.Final.Top1, b.Final.Top1, 6);
        var before = CheckpointReader.ReadPickle(Path.Combine(first, "finetuned.pth"));
        var after = CheckpointReader.ReadPickle(b.ModelPath);
        foreach (string key in new[] { "head.weight", "head.bias", "fc_norm.weight", "blocks.0.mlp.fc1.weight" })
            Assert.True(torch.allclose((Tensor)after[key]!, (Tensor)before[key]!, rtol: 0, atol: 1e-6), $"{key} did not continue from the fine-tuned file");
        var cls = Assert.Throws<ArgumentException>(() => FinetuneJob.Run(cfg with { Checkpoint = Path.Combine(first, "finetuned.pth"), GlobalPool = false }, RunContext.Cpu(OutDir())));
        Assert.Contains("--global-pool", cls.Message);
    }

    [Fact]
    public void AnEmaUpdateIsDecayTimesTheAverageOnePlusTheRestTimesTheModel()
    {
        using var source = torch.nn.Linear(3, 2);
        using var copy = torch.nn.Linear(3, 2);
        var ema = new ModelEma(copy, source, decay: 0.75);
        using var before = copy.weight!.detach().clone();
        using (torch.no_grad()) source.weight!.add_(1.0);
        ema.Update(source);
        using var expected = before * 0.75 + source.weight!.detach() * 0.25;
        Assert.True(torch.allclose(copy.weight!, expected, rtol: 0, atol: 1e-6));
        Assert.Throws<ArgumentException>(() => new ModelEma(copy, source, decay: 1.0));
    }

    [Fact]
    public void ProjectorLayersAreEvaluatedFromADistillCheckpoint()
    {
        torch.manual_seed(5);
        using var student = new DistillStudent(Vit, teacherDim: 48, projectorLayers: 2);
        string dir = OutDir(), path = Path.Combine(dir, "checkpoint-0001.ckpt");
        using (var ckpt = new TrainingCheckpoint { Model = student.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value), ModelConfig = Vit, Epoch = 1 })
        {
            ckpt.Save(path);
            ckpt.Model.Clear();
        }
        using var x = randn(3, 3, 16, 16);
        student.eval();
        foreach (var (layer, width) in new[] { (0, 32L), (1, 64L), (2, 48L), (3, 48L) })
        {
            using var model = EvaluatedBackbone.Load(path, 16, layer);
            using var expected = student.EvaluationFeature(x, layer);
            using var got = model.forward(x);
            Assert.Equal(width, got.shape[1]);
            TensorAssert.Close(expected, got, $"layer {layer}", 1e-5, 1e-6);
        }
        Assert.Contains("--eval-layer", Assert.Throws<ArgumentException>(() => EvaluatedBackbone.Load(path, 16, 4)).Message);
        Assert.Contains("--eval-layer", Assert.Throws<CheckpointFormatException>(() => EvaluatedBackbone.Load(Backbone(), 16, 1)).Message);
    }
}
