using System.Text.Json;
using AttnDistill.Checkpoints;
using AttnDistill.Distillation;
using AttnDistill.Models;
using AttnDistill.Tests.TestSupport;
using AttnDistill.Training;
using TorchSharp;
using AttnDistill.Runs;
using Xunit;
using static TorchSharp.torch;

namespace AttnDistill.Tests.Distillation;

public class DistillJobTests
{
    static string Teacher(VitConfig cfg, int seed = 11)
    {
        torch.manual_seed(seed);
        using var t = new VisionTransformer(cfg);
        // Our safetensors carry the config (a width-64 ViT's heads cannot be inferred from shapes).
        string path = Path.Combine(Directory.CreateTempSubdirectory("teacher").FullName, "teacher.safetensors");
        BackboneExport.SaveSafetensors(t, path, cfg);
        return path;
    }

    static readonly VitConfig TeacherCfg = new() { ImageSize = 28, PatchSize = 4, EmbedDim = 64, Depth = 2, NumHeads = 4 };
    static readonly VitConfig StudentCfg = new() { ImageSize = 28, PatchSize = 7, EmbedDim = 32, Depth = 2, NumHeads = 2 };

    [Fact]
    public void ProjectorWidthsAlternateAndEndAtTheTeacherWidth()
    {
        using var p = new Projector(192, 384, 4);
        var linears = p.state_dict().Where(kv => kv.Key.EndsWith("weight") && kv.Value.dim() == 2)
            .Select(kv => $"{kv.Value.shape[1]}->{kv.Value.shape[0]}").ToArray();
        Assert.Equal(new[] { "192->384", "384->192", "192->384", "384->384" }, linears);
        using var p1 = new Projector(192, 768, 1);
        Assert.Equal(768, p1.state_dict()["layers.1.weight"].shape[0]);
        Assert.Equal(192, p1.state_dict()["layers.0.weight"].shape[0]);   // LayerNorm(d) first
    }

    [Fact]
    public void IncompatibleSettingsAreRefusedBeforeTraining()
    {
        string teacher = Teacher(TeacherCfg);
        DistillJobConfig Cfg(DistillLossOptions loss, int proj = 2, VitConfig? student = null) => new()
        {
            DataRoot = Path.GetTempPath(), TeacherPath = teacher, Student = student ?? StudentCfg, ProjectorLayers = proj, Loss = loss,
            Trainer = new TrainerOptions(),
        };
        Assert.Contains("--aggregation", Assert.ThrowsAny<ArgumentException>(() => DistillJob.Prepare(Cfg(new() { Aggregation = AttentionAggregation.None }), null)).Message);
        Assert.Contains("--interpolate", Assert.ThrowsAny<ArgumentException>(() => DistillJob.Prepare(Cfg(new() { Interpolate = false }), null)).Message);
        Assert.Contains("--proj-layers", Assert.ThrowsAny<ArgumentException>(() => DistillJob.Prepare(Cfg(new(), proj: 0), null)).Message);
    }

    [SkippableFact]
    public void ShortDistillationOnFashionMnistLowersBothLossParts()
    {
        RealData.RequireFashionMnist();
        string dir = Directory.CreateTempSubdirectory("distill").FullName;
        var cfg = new DistillJobConfig
        {
            DataRoot = RealData.FashionMnist, TeacherPath = Teacher(TeacherCfg), Student = StudentCfg, ProjectorLayers = 2,
            Loss = new DistillLossOptions { WeightAttn = 0.1, AttnTemperature = 10 },
            // 800 steps of batch 32: 4 epochs over a 6,400-image slice of the data.
            Trainer = new TrainerOptions { Epochs = 4, WarmupEpochs = 1, BatchSize = 32, Lr = 1e-3, LogEverySteps = 10, Seed = 0 },
            Workers = 2,
        };
        var result = DistillJob.Run(cfg with { DataRoot = FashionMnistSlice.Create(6400) }, RunContext.Cpu(dir) with { ConfigText = "test: true" });
        Assert.Equal(4, result.Train.EpochsDone);
        var epochs = File.ReadLines(Path.Combine(dir, "log.txt")).Where(l => l.Contains("train_loss")).Select(l => JsonDocument.Parse(l).RootElement).ToArray();
        double First(string key) => epochs[0].GetProperty(key).GetDouble();
        double Last(string key) => epochs[^1].GetProperty(key).GetDouble();
        Assert.True(Last("train_cls") < First("train_cls") * 0.9, $"cls {First("train_cls")} -> {Last("train_cls")}");
        Assert.True(Last("train_attn") < First("train_attn"), $"attn {First("train_attn")} -> {Last("train_attn")}");
        Assert.True(File.Exists(Path.Combine(dir, "backbone.pth")) && File.Exists(Path.Combine(dir, "backbone.safetensors")));
        var metrics = MetricsFile.Read(Path.Combine(dir, "metrics.json"));
        Assert.Equal(800, (long)metrics["distill"]!["optimizer_steps"]!);
        // The exported backbone loads back as a ViT with the student's shape.
        var (back, _) = VitCheckpointLoader.Load(result.BackboneSafetensors);
        using var _ = back;
        Assert.Equal(StudentCfg with { }, back.Config);
    }
}
