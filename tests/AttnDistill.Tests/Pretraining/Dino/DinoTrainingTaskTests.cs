using AttnDistill.Data;
using AttnDistill.Models;
using AttnDistill.Pretraining.Dino;
using AttnDistill.Tests.TestSupport;
using AttnDistill.Training;
using TorchSharp.Modules;
using Xunit;
using static TorchSharp.torch;

namespace AttnDistill.Tests.Pretraining.Dino;

/// <summary>One step of the DINO task against main_dino.train_one_epoch's order of operations, with the loss, EMA and schedule functions the parity tests cover.</summary>
public class DinoTrainingTaskTests
{
    static readonly VitConfig Tiny = new() { ImageSize = 16, PatchSize = 8, EmbedDim = 16, Depth = 1, NumHeads = 2 };
    static readonly DinoHeadConfig Head = new() { OutDim = 32, HiddenDim = 24, BottleneckDim = 8 };

    static (MultiCropWrapper Student, MultiCropWrapper Teacher) Models()
    {
        manual_seed(3);
        var student = new MultiCropWrapper(new VisionTransformer(Tiny), new DinoHead(Tiny.EmbedDim, Head));
        var teacher = new MultiCropWrapper(new VisionTransformer(Tiny), new DinoHead(Tiny.EmbedDim, Head));
        AttnDistill.Checkpoints.StateDictLoader.Load(teacher, student.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value));
        return (student, teacher);
    }

    static Dictionary<string, Tensor> Snapshot(nn.Module m) => m.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone());

    [Fact]
    public void StateDictNamesAreDinosWithoutTheModulePrefix()
    {
        var (student, teacher) = Models();
        using var _s = student;
        using var _t = teacher;
        var keys = student.state_dict().Keys.ToArray();
        Assert.Contains("backbone.cls_token", keys);
        Assert.Contains("backbone.blocks.0.attn.qkv.weight", keys);
        Assert.Contains("head.mlp.0.weight", keys);
        Assert.Contains("head.last_layer.weight_g", keys);
        Assert.All(keys, k => Assert.True(k.StartsWith("backbone.", StringComparison.Ordinal) || k.StartsWith("head.", StringComparison.Ordinal), k));
    }

    [Fact]
    public void OneStepFollowsTrainOneEpoch()
    {
        var (student, teacher) = Models();
        using var _s = student;
        using var _t = teacher;
        var crops = new DinoCropConfig { GlobalSize = 16, LocalSize = 8, LocalCropsNumber = 2 };
        var aug = new DinoAugmentation(crops);
        var loader = new AttnDistill.Data.DataLoader(new SyntheticImageDataset(16, 20, 4, seed: 1), aug, new DataLoaderOptions { BatchSize = 8, Workers = 0, DropLast = true });
        var schedule = DinoSchedule.Create(1e-3, 1e-6, 1, 0.04, 0.4, 0.9, epochs: 2, iterationsPerEpoch: loader.BatchesPerEpoch);
        using var loss = new DinoLoss(Head.OutDim, crops.Crops, 0.04, 0.07, 1, 2);
        using var reference = new DinoLoss(Head.OutDim, crops.Crops, 0.04, 0.07, 1, 2);
        const double clip = 0.05;
        var task = new DinoTrainingTask(student, teacher, loss, aug.Layout, schedule, clip, freezeLastLayer: 1);
        Assert.All(teacher.parameters(), p => Assert.False(p.requires_grad));
        var groups = task.ParameterGroups(0.04);
        Assert.Equal("decay", groups[0].Name);
        using var optimizer = Trainer.AdamW(groups, new TrainerOptions { Beta2 = 0.999 }, 1.0);
        task.Train();

        using var epoch = loader.Epoch(0).GetEnumerator();
        Assert.True(epoch.MoveNext());
        var batch = epoch.Current;
        var split = aug.Layout.Split(batch.Images);
        Assert.Equal(new long[] { 8, 3, 16, 16 }, split[1].shape);
        Assert.Equal(new long[] { 8, 3, 8, 8 }, split[3].shape);
        Tensor expected, teacherOut;
        using (no_grad())
        {
            teacherOut = teacher.Forward(split.Take(2).ToArray());
            expected = reference.Compute(student.Forward(split), teacherOut, 0);
        }
        var step = task.Loss(batch);
        Assert.Equal(expected.item<float>(), step.Total.item<float>(), 6);
        // The centre moved with this batch: 0.9 x 0 + 0.1 x mean of the teacher outputs.
        using (var mean = teacherOut.mean(new long[] { 0 }, keepdim: true) * 0.1) TensorAssert.Close(mean, loss.Center, "centre", 0, 1e-6);

        step.Total.backward();
        task.AfterGradientsAveraged(optimizer, 0);
        Assert.Equal(schedule.Lr[0], optimizer.ParamGroups.First().LearningRate);
        Assert.All(optimizer.ParamGroups, g => Assert.Equal(schedule.Lr[0], g.LearningRate));
        Assert.Equal(schedule.WeightDecay[0], ((AdamW.Options)((ParamGroup)optimizer.ParamGroups.First()).Options).weight_decay);
        Assert.Equal(0.0, ((AdamW.Options)((ParamGroup)optimizer.ParamGroups.Last()).Options).weight_decay);
        foreach (var (name, p) in student.named_parameters())
        {
            if (name.Contains("last_layer")) { Assert.True(p.grad is null, name); continue; }   // frozen during epoch 0
            if (p.grad is { } g) Assert.True(g.norm().item<float>() <= clip * 1.0001, $"{name}: {g.norm().item<float>()}");
        }
        var lastLayerBefore = student.Head.LastLayer.WeightV.detach().clone();
        var teacherBefore = Snapshot(teacher);
        optimizer.step();
        task.AfterOptimizerStep();
        Assert.True(lastLayerBefore.allclose(student.Head.LastLayer.WeightV, 0, 0), "the frozen last layer moved");
        double m = schedule.Momentum[0];
        foreach (var (name, t) in teacher.state_dict())
        {
            using var want = teacherBefore[name].mul(m).add(student.state_dict()[name].detach() * (1 - m));
            Assert.True(want.allclose(t, 0, 0), $"teacher {name} is not the EMA");
        }

        // From the epoch --freeze-last-layer on, the last layer learns.
        optimizer.zero_grad();
        task.Loss(batch).Total.backward();
        task.AfterGradientsAveraged(optimizer, schedule.IterationsPerEpoch);
        Assert.NotNull(student.Head.LastLayer.WeightV.grad);
        Assert.Equal(schedule.Lr[schedule.IterationsPerEpoch], optimizer.ParamGroups.First().LearningRate);
    }

    [Fact]
    public void SavedStateRestoresTeacherAndCentre()
    {
        var (student, teacher) = Models();
        using var _s = student;
        using var _t = teacher;
        var layout = new MultiCropLayout(new[] { 16, 16 });
        using var loss = new DinoLoss(Head.OutDim, 2, 0.04, 0.04, 0, 1);
        var task = new DinoTrainingTask(student, teacher, loss, layout, DinoSchedule.Create(1e-3, 0, 0, 0.04, 0.4, 0.996, 1, 1), 3, 1);
        using (no_grad()) { loss.Center.fill_(0.25); foreach (var p in teacher.parameters()) p.add_(1); }
        var saved = task.SaveState()!;
        var copy = new AttnDistill.Checkpoints.CheckpointSection { Json = saved.Json, Tensors = saved.Tensors.ToDictionary(kv => kv.Key, kv => kv.Value.clone()) };
        using (no_grad()) { loss.Center.zero_(); foreach (var p in teacher.parameters()) p.zero_(); }
        task.LoadState(copy);
        Assert.Equal(0.25f, loss.Center.mean().item<float>());
        Assert.True(teacher.parameters().All(p => p.abs().sum().item<float>() > 0));
        Assert.Throws<AttnDistill.Checkpoints.CheckpointFormatException>(() => task.LoadState(new AttnDistill.Checkpoints.CheckpointSection()));
    }
}
