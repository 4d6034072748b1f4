using System.Collections;
using AttnDistill.Checkpoints;
using AttnDistill.Evaluation;
using AttnDistill.Models;
using AttnDistill.Pretraining.Dino;
using AttnDistill.Tests.TestSupport;
using AttnDistill.Training;
using Xunit;
using static TorchSharp.torch;

namespace AttnDistill.Tests.Pretraining.Dino;

/// <summary>A DINO run resumes bit for bit, and every file it writes loads where a teacher is read (knn, distill, visualize all go through VitCheckpointLoader).</summary>
public class DinoPretrainJobTests
{
    static DinoPretrainJobConfig Config(string data, string outDir)
    {
        var cfg = BaseConfig(data, outDir);
        return cfg with { Args = DinoPretrainJob.ArgsOf(cfg, "vit_tiny", outDir) };
    }

    static DinoPretrainJobConfig BaseConfig(string data, string outDir) => new()
    {
        DataRoot = data,
        // Width 192 is a standard ViT width, so even the plain .pth files need no --heads.
        Backbone = new VitConfig { ImageSize = 16, PatchSize = 8, EmbedDim = 192, Depth = 1, NumHeads = 3, DropPathRate = 0.1 },
        Head = new DinoHeadConfig { OutDim = 64, HiddenDim = 32, BottleneckDim = 16 },
        Crops = new DinoCropConfig { GlobalSize = 16, LocalSize = 8, LocalCropsNumber = 2 },
        Dino = new DinoOptions { Lr = 2e-3, WarmupEpochs = 1, WarmupTeacherTempEpochs = 1, TeacherTemp = 0.07 },
        Trainer = new TrainerOptions { Epochs = 2, BatchSize = 8, Seed = 5, LogEverySteps = 1 },
        Workers = 2,
    };

    static Dictionary<string, Tensor> Read(string path) =>
        SafetensorsFile.Read(path).Tensors.ToDictionary(kv => kv.Key, kv => kv.Value);

    [Fact]
    public void ResumedRunIsBitExactAndItsFilesLoadEverywhere()
    {
        string data = SyntheticImageFolder.Write(trainPerClass: 8, testPerClass: 4);
        string straight = Directory.CreateTempSubdirectory("dino-straight").FullName;
        string resumed = Directory.CreateTempSubdirectory("dino-resumed").FullName;
        var a = DinoPretrainJob.Run(Config(data, straight), AttnDistill.Runs.RunContext.Cpu(straight));
        var first = DinoPretrainJob.Run(Config(data, resumed) with { StopAfterEpochs = 1 }, AttnDistill.Runs.RunContext.Cpu(resumed));
        Assert.True(first.Train.Interrupted);
        var b = DinoPretrainJob.Run(Config(data, resumed) with { Resume = true }, AttnDistill.Runs.RunContext.Cpu(resumed));
        Assert.Equal(a.Train.OptimizerSteps, b.Train.OptimizerSteps);
        var ta = Read(a.TeacherPath);
        var tb = Read(b.TeacherPath);
        Assert.Equal(ta.Keys.Order(), tb.Keys.Order());
        foreach (var k in ta.Keys) Assert.True(ta[k].allclose(tb[k], 0, 0), $"teacher {k} differs after resume");
        var init = Read(Path.Combine(straight, DinoPretrainJob.InitialTeacherFile));
        Assert.False(init["blocks.0.attn.qkv.weight"].allclose(ta["blocks.0.attn.qkv.weight"], 0, 0), "the teacher did not move");

        // DINO's checkpoint.pth, as main_dino's save_dict.
        var ckA = CheckpointReader.ReadPickle(a.DinoCheckpointPath);
        var ckB = CheckpointReader.ReadPickle(b.DinoCheckpointPath);
        Assert.Equal(new[] { "args", "dino_loss", "epoch", "optimizer", "student", "teacher" }, ckA.Keys.Cast<string>().Order(StringComparer.Ordinal));
        Assert.Equal(2, Convert.ToInt32(ckA["epoch"]));
        var student = (IDictionary)ckA["student"]!;
        var teacher = (IDictionary)ckA["teacher"]!;
        Assert.All(student.Keys.Cast<string>(), k => Assert.Matches("^module\\.(backbone|head)\\.", k));
        Assert.All(teacher.Keys.Cast<string>(), k => Assert.Matches("^(backbone|head)\\.", k));
        Assert.Contains("head.last_layer.weight_g", teacher.Keys.Cast<string>());
        var centerA = (Tensor)((IDictionary)ckA["dino_loss"]!)["center"]!;
        var centerB = (Tensor)((IDictionary)ckB["dino_loss"]!)["center"]!;
        Assert.Equal(new long[] { 1, 64 }, centerA.shape);
        Assert.True(centerA.allclose(centerB, 0, 0), "the centre differs after resume");
        Assert.True(centerA.abs().sum().item<float>() > 0);
        var optimizer = (IDictionary)ckA["optimizer"]!;
        var groups = (IList)optimizer["param_groups"]!;
        Assert.Equal(2, groups.Count);
        Assert.Equal(0.0, Convert.ToDouble(((IDictionary)groups[1]!)["weight_decay"]));
        var state = (IDictionary)optimizer["state"]!;
        Assert.True(state.Count > 0);
        var args = (IDictionary)ckA["args"]!;
        Assert.Equal(64, Convert.ToInt32(args["out_dim"]));
        Assert.Equal("vit_tiny", args["arch"]);
        Assert.Equal(3, Convert.ToInt32(args["num_heads"]));

        // The teacher backbone from each file gives the same features.
        using var x = randn(2, 3, 16, 16);
        Tensor? reference = null;
        foreach (var (file, key) in new[] { (a.TeacherPath, (string?)null), (Path.Combine(straight, DinoPretrainJob.TeacherPthFile), null), (a.DinoCheckpointPath, null), (a.DinoCheckpointPath, "teacher") })
        {
            var (model, cfg) = VitCheckpointLoader.Load(file, checkpointKey: key);
            using var _ = model;
            Assert.Equal(PosEmbedKind.Learnable, cfg.PosEmbed);
            Assert.Equal(3, cfg.NumHeads);
            model.eval();
            using (no_grad())
            {
                var y = model.forward(x);
                if (reference is null) reference = y;
                else Assert.True(reference.allclose(y, 0, 1e-6), $"{file} ({key ?? "default"}) gives other features");
            }
        }
        var (studentModel, _) = VitCheckpointLoader.Load(a.DinoCheckpointPath, checkpointKey: "student");
        studentModel.Dispose();

        var knn = KnnJob.Run(new KnnJobConfig { Checkpoint = a.DinoCheckpointPath, DataRoot = data, ImageSize = 16, Ks = new[] { 5 }, BatchSize = 16, Workers = 0 }, AttnDistill.Runs.RunContext.Cpu(Path.Combine(straight, "knn")));
        Assert.InRange(knn[0].Top1, 0, 100);
        Assert.True(File.Exists(Path.Combine(straight, "metrics.json")));
        Assert.True(File.Exists(Path.Combine(straight, "log.txt")));
    }
}
