using AttnDistill.Checkpoints;
using AttnDistill.Data;
using AttnDistill.Data.Transforms;
using AttnDistill.Distillation;
using AttnDistill.Models;
using AttnDistill.Pretraining;
using AttnDistill.Tests.TestSupport;
using AttnDistill.Runs;
using AttnDistill.Training;
using TorchSharp;
using TorchSharp.Modules;
using Xunit;
using Xunit.Abstractions;
using static TorchSharp.torch;
using DataLoader = AttnDistill.Data.DataLoader;

namespace AttnDistill.Tests.Training;

/// <summary>
/// bf16 mixed precision (<see cref="Autocast"/>, <c>--precision bf16</c>) against fp32 on the CPU:
/// the loss parts of the first optimizer steps, gradient accumulation, and which tensors are bf16.
/// </summary>
public class AutocastTests(ITestOutputHelper output)
{
    // Dropout and drop path are 0 (the config defaults): both precisions draw the same random numbers.
    static readonly VitConfig TeacherCfg = new() { ImageSize = 32, PatchSize = 4, EmbedDim = 64, Depth = 2, NumHeads = 4 };
    static readonly VitConfig StudentCfg = new() { ImageSize = 32, PatchSize = 8, EmbedDim = 32, Depth = 2, NumHeads = 2 };
    static readonly MaeConfig MaeCfg = MaeConfig.For(new VitConfig { ImageSize = 32, PatchSize = 4, EmbedDim = 48, Depth = 2, NumHeads = 3, PosEmbed = PosEmbedKind.SinCos })
        with { DecoderEmbedDim = 32, DecoderDepth = 1, DecoderNumHeads = 2 };

    static DataLoader Loader(int batch, int count) =>
        new(new SyntheticImageDataset(count, size: 32), TransformPresets.Train(32, 0.5), new DataLoaderOptions { BatchSize = batch, Seed = 4, DropLast = true, Workers = 0 });

    static TrainerOptions Options(int batch, int effective, ComputePrecision precision) =>
        new() { Epochs = 1, WarmupEpochs = 0, BatchSize = batch, EffectiveBatch = effective, Lr = 1e-3, Seed = 1, Precision = precision };

    /// <summary>A fresh distillation task: the same weights for the same seed.</summary>
    static (DistillationTask Task, IDisposable Models) Distill(int seed = 7)
    {
        manual_seed(seed);
        var teacher = new VisionTransformer(TeacherCfg);
        // Random teachers attend almost uniformly (a KL near 0): larger weights give peaked rows, a real attention term.
        using (no_grad())
            foreach (var p in teacher.parameters()) p.mul_(4);
        var student = new DistillStudent(StudentCfg, TeacherCfg.EmbedDim, projectorLayers: 2);
        return (new DistillationTask(teacher, student, new DistillLossOptions()), new Both(teacher, student));
    }

    sealed class Both(IDisposable a, IDisposable b) : IDisposable
    {
        public void Dispose() { a.Dispose(); b.Dispose(); }
    }

    /// <summary>The trainer's own micro-batch and optimizer steps over the first batches of epoch 0: [total, parts...] per step.</summary>
    static List<double[]> FirstSteps(ITrainingTask task, ComputePrecision precision, int steps, int batch = 8)
    {
        var loader = Loader(batch, batch * steps);
        var trainer = new Trainer(task, loader, Options(batch, 0, precision), new TrainerRun { Context = new RunContext { OutDir = Path.GetTempPath() }, TensorBoard = false });
        task.Train();
        var losses = new List<double[]>();
        foreach (var b in loader.Epoch(0))
        {
            using var scope = NewDisposeScope();
            using var _ = b;
            losses.Add(trainer.ForwardBackward(b).Packed);
            trainer.OptimizerStep();
        }
        return losses;
    }

    // bf16 keeps 8 significant bits (relative rounding 2^-9 = 0.2 %), and every product's inputs and
    // outputs are rounded so, over the patch embedding, 2 blocks and a 2-layer projector; the
    // LayerNorms, softmax and losses are fp32. Measured on these tiny models: feature MSE (cls) and
    // total within 0.04 %, MAE loss within 0.07 %, so 1 % is the bound for them.
    const double LossTolerance = 0.01;

    // The attention KL compares rows whose logits come out of a bf16 q.k product: 2^-9 of logits that
    // reach tens in this peaked teacher is 0.05-0.1 of logit, and the KL of two nearly equal
    // distributions is small, so its relative gap is larger: 1.7-2.3 % measured (PyTorch's autocast
    // rounds the same product). 5 % still fails a wrong temperature, clamp or weight (tens of percent).
    const double AttentionTolerance = 0.05;

    [Fact]
    public void Bf16DistillationLossPartsMatchFp32ForTheFirstSteps()
    {
        List<double[]> Run(ComputePrecision p)
        {
            var (task, models) = Distill();
            using var _ = models;
            return FirstSteps(task, p, steps: 4);
        }
        var fp32 = Run(ComputePrecision.Float32);
        var bf16 = Run(ComputePrecision.BFloat16);
        // [total, cls, attn] (DistillationTask's parts in dictionary order).
        for (int step = 0; step < fp32.Count; step++)
            for (int i = 0; i < 3; i++)
            {
                double rel = Math.Abs(bf16[step][i] - fp32[step][i]) / Math.Abs(fp32[step][i]);
                output.WriteLine($"step {step} part {i}: fp32 {fp32[step][i]:G6} bf16 {bf16[step][i]:G6} rel {rel:E2}");
                Assert.True(rel < (i == 2 ? AttentionTolerance : LossTolerance), $"step {step}, part {i}: bf16 {bf16[step][i]} vs fp32 {fp32[step][i]} (relative {rel:E2})");
            }
        Assert.True(fp32[0][2] > 0.01, $"the attention term should matter: {fp32[0][2]}");
        Assert.NotEqual(fp32[0][1], bf16[0][1]);   // bf16 really ran: the parts are not bit-identical
        Assert.True(bf16[^1][0] < bf16[0][0], "the bf16 run should lower the loss in 4 steps");
    }

    [Fact]
    public void Bf16MaeLossMatchesFp32ForTheFirstSteps()
    {
        List<double[]> Run(ComputePrecision p)
        {
            manual_seed(3);
            using var mae = new MaskedAutoencoder(MaeCfg);
            return FirstSteps(new MaeTrainingTask(mae), p, steps: 4);
        }
        var fp32 = Run(ComputePrecision.Float32);
        var bf16 = Run(ComputePrecision.BFloat16);
        for (int step = 0; step < fp32.Count; step++)
        {
            double rel = Math.Abs(bf16[step][0] - fp32[step][0]) / fp32[step][0];
            output.WriteLine($"step {step}: fp32 {fp32[step][0]:G6} bf16 {bf16[step][0]:G6} rel {rel:E2}");
            Assert.True(rel < LossTolerance, $"step {step}: bf16 MAE loss {bf16[step][0]} vs fp32 {fp32[step][0]} (relative {rel:E2})");
        }
        Assert.NotEqual(fp32[0][0], bf16[0][0]);
    }

    /// <summary>Snapshots the accumulated gradients when the trainer is about to step.</summary>
    sealed class GradientProbe(ITrainingTask inner) : ITrainingTask
    {
        public Dictionary<string, Tensor> Gradients { get; } = new();
        public nn.Module Model => inner.Model;
        public string Kind => inner.Kind;
        public void Train() => inner.Train();
        public StepLoss Loss(DataBatch batch) => inner.Loss(batch);

        public void BeforeOptimizerStep()
        {
            foreach (var (name, p) in Model.named_parameters())
                if (p.grad is { } g) Gradients[name] = g.detach().clone().DetachFromDisposeScope();
        }
    }

    Dictionary<string, Tensor> AccumulatedGradients(int batch, int effective, ComputePrecision precision)
    {
        var (task, models) = Distill(seed: 5);
        using var _ = models;
        var probe = new GradientProbe(task);
        var loader = Loader(batch, 32);
        var trainer = new Trainer(probe, loader, Options(batch, effective, precision), new TrainerRun { Context = new RunContext { OutDir = Path.GetTempPath() }, TensorBoard = false });
        probe.Train();
        foreach (var b in loader.Epoch(0))
        {
            using var scope = NewDisposeScope();
            using var __ = b;
            trainer.ForwardBackward(b);
            if ((b.BatchIndex + 1) % trainer.AccumulationSteps == 0) trainer.OptimizerStep();
        }
        // All but the backbone's own final norm, which a student with a projector does not use.
        Assert.Equal(task.Student.parameters().Count(p => p.requires_grad) - 2, probe.Gradients.Count);
        return probe.Gradients;
    }

    /// <summary>max over parameters of |g_a - g_b| / |g_b| (L2 norms).</summary>
    static double WorstRelativeDifference(Dictionary<string, Tensor> a, Dictionary<string, Tensor> b, out string worst)
    {
        double max = 0;
        worst = "";
        foreach (var (name, g) in b)
        {
            double norm = g.norm().item<float>();
            if (norm == 0) continue;
            double rel = (a[name] - g).norm().item<float>() / norm;
            if (rel > max) (max, worst) = (rel, name);
        }
        return max;
    }

    [Fact]
    public void Bf16AccumulatingFourTimesEightEqualsOneBatchOf32LikeFp32()
    {
        var fp32Whole = AccumulatedGradients(32, 0, ComputePrecision.Float32);
        var fp32Accum = AccumulatedGradients(8, 32, ComputePrecision.Float32);
        var bf16Whole = AccumulatedGradients(32, 0, ComputePrecision.BFloat16);
        var bf16Accum = AccumulatedGradients(8, 32, ComputePrecision.BFloat16);
        Assert.All(bf16Accum.Values.Concat(bf16Whole.Values), g => Assert.Equal(ScalarType.Float32, g.dtype));   // accumulated in fp32

        double fp32 = WorstRelativeDifference(fp32Accum, fp32Whole, out var fp32Name);
        double bf16 = WorstRelativeDifference(bf16Accum, bf16Whole, out var bf16Name);
        double vsFp32 = WorstRelativeDifference(bf16Whole, fp32Whole, out var vsName);
        output.WriteLine($"4x8 vs 32: fp32 {fp32:E2} ({fp32Name}), bf16 {bf16:E2} ({bf16Name}); bf16 vs fp32 at batch 32: {vsFp32:E2} ({vsName})");
        // fp32: only the summation order differs.
        Assert.True(fp32 < 1e-4, $"fp32 4x8 vs 32: {fp32:E2} on {fp32Name}");
        // bf16: each micro-batch's weight gradient leaves its bf16 product rounded (2^-9 relative),
        // 4 of them add up in fp32; no larger than bf16's own distance from fp32 at batch 32. A lost
        // micro-batch or a missing 1/4 scale gives 0.25-3, far above.
        Assert.True(bf16 < 0.02, $"bf16 4x8 vs 32: {bf16:E2} on {bf16Name}");
        Assert.True(bf16 <= Math.Max(vsFp32, 1e-3), $"bf16 4x8 vs 32 ({bf16:E2}) should not exceed bf16 vs fp32 ({vsFp32:E2})");
        foreach (var g in new[] { fp32Whole, fp32Accum, bf16Whole, bf16Accum }.SelectMany(d => d.Values)) g.Dispose();
    }

    [Fact]
    public void UnderTheScopeProductsAreBf16AndNormsSoftmaxLossesAndGradientsFp32()
    {
        var (task, models) = Distill();
        using var _ = models;
        var student = task.Student;
        student.train();
        using var scope = NewDisposeScope();
        var x = randn(2, 3, 32, 32);
        var attention = new Attention(32, 2, qkvBias: true, 0, 0);
        var layerNorm = nn.LayerNorm(32);
        var linear = nn.Linear(32, 16);
        var tokens = randn(2, 5, 32);
        StepLoss loss;
        using (Autocast.Enable())
        {
            Assert.Equal(ScalarType.BFloat16, Autocast.LowPrecision);
            Assert.Equal(ScalarType.BFloat16, Autocast.Linear(linear, tokens).dtype);                                   // product
            Assert.Equal(ScalarType.BFloat16, Autocast.Matmul(tokens, tokens.transpose(1, 2)).dtype);                  // q.k
            Assert.Equal(ScalarType.BFloat16, student.Backbone.PatchEmbedding.forward(x).dtype);                       // conv
            Assert.Equal(ScalarType.Float32, Autocast.LayerNorm(layerNorm, tokens.to(ScalarType.BFloat16)).dtype);    // LN in fp32
            Assert.Equal(ScalarType.Float32, Autocast.Softmax(tokens.to(ScalarType.BFloat16), -1).dtype);
            var a = attention.Forward(tokens, returnAttention: true, valueNorms: true, out var rows);
            Assert.Equal(ScalarType.BFloat16, a.dtype);                                                                // proj output
            Assert.Equal(ScalarType.Float32, rows!.Value.ClsAttention.dtype);                                          // distilled CLS row
            Assert.Equal(ScalarType.Float32, rows.Value.ValueNorms!.dtype);
            Assert.Equal(ScalarType.Float32, student.Backbone.PrepareTokens(x).dtype);                                 // residual stream
            var features = student.Backbone.ForwardFeatures(x, AttentionRequest.LastBlock);
            Assert.Equal(ScalarType.Float32, features.Hidden.dtype);
            Assert.Equal(ScalarType.Float32, features.Attention[0].ClsAttention.dtype);
            Assert.Equal(ScalarType.Float32, student.forward(x).dtype);                                                // projector's LayerNorm
            loss = task.Loss(new DataBatch(0, 0, x, zeros(2, dtype: ScalarType.Int64), new[] { 0, 1 }));
            Assert.All(loss.Parts.Values.Append(loss.Total), t => Assert.Equal(ScalarType.Float32, t.dtype));
            using (Autocast.Enable()) Assert.True(Autocast.IsEnabled);
            Assert.True(Autocast.IsEnabled);   // a nested scope gives the outer one back
        }
        Assert.False(Autocast.IsEnabled);
        loss.Total.backward();
        var trainable = student.parameters().Where(p => p.requires_grad).ToArray();
        Assert.All(trainable, p => Assert.Equal(ScalarType.Float32, p.dtype));
        var withGrad = trainable.Where(p => p.grad is not null).ToArray();
        Assert.Equal(trainable.Length - 2, withGrad.Length);   // the backbone's final norm is unused with a projector
        Assert.All(withGrad, p => Assert.Equal(ScalarType.Float32, p.grad!.dtype));
        Assert.All(withGrad, p => Assert.True(p.grad!.abs().sum().item<float>() > 0));
        Assert.Equal(ScalarType.Float32, Autocast.Linear(linear, tokens).dtype);   // outside: the module's own fp32 forward
        Assert.Throws<ArgumentException>(() => Autocast.Enable(ScalarType.Float16));
    }

    [Fact]
    public void UnderTheScopeMaeReturnsFp32PredictionAndLoss()
    {
        manual_seed(2);
        using var mae = new MaskedAutoencoder(MaeCfg);
        using var scope = NewDisposeScope();
        var x = randn(2, 3, 32, 32);
        var noise = rand(2, MaeCfg.Encoder.NumPatches);
        var reference = mae.Forward(x, noise);
        MaeOutput mixed;
        using (Autocast.Enable()) mixed = mae.Forward(x, noise);
        Assert.Equal(ScalarType.Float32, mixed.Pred.dtype);
        Assert.Equal(ScalarType.Float32, mixed.Loss.dtype);
        double rel = Math.Abs(mixed.Loss.item<float>() - reference.Loss.item<float>()) / reference.Loss.item<float>();
        Assert.True(rel is > 0 and < LossTolerance, $"bf16 MAE loss relative to fp32: {rel:E2}");
        mixed.Loss.backward();
        Assert.All(mae.parameters().Where(p => p.requires_grad), p => Assert.Equal(ScalarType.Float32, p.grad!.dtype));
    }

    [Fact]
    public void JobsHandTheirPrecisionToTheTrainer()
    {
        // The same seeded runs in both precisions: equal were the flag dropped, close and unequal when it reaches the trainer.
        string root = SyntheticImageFolder.Write(trainPerClass: 8, testPerClass: 1, size: 32, classes: 2);
        var trainer = new TrainerOptions { Epochs = 1, WarmupEpochs = 0, BatchSize = 8, Lr = 1e-3, Seed = 2 };
        manual_seed(11);
        string teacherPath = Path.Combine(Directory.CreateTempSubdirectory("teacher").FullName, "teacher.safetensors");
        using (var t = new VisionTransformer(TeacherCfg)) BackboneExport.SaveSafetensors(t, teacherPath, TeacherCfg);
        double Distilled(ComputePrecision p) => DistillJob.Run(new DistillJobConfig
        {
            DataRoot = root, TeacherPath = teacherPath, Student = StudentCfg, ProjectorLayers = 2, Trainer = trainer, Workers = 0,
            Precision = p,
        }, AttnDistill.Runs.RunContext.Cpu(Directory.CreateTempSubdirectory("distill").FullName)).Train.LastEpochLoss["loss"];
        double Pretrained(ComputePrecision p) => MaePretrainJob.Run(new MaePretrainJobConfig
        {
            DataRoot = root, Mae = MaeCfg, Trainer = trainer, Workers = 0, PictureEvery = 0,
            Precision = p,
        }, AttnDistill.Runs.RunContext.Cpu(Directory.CreateTempSubdirectory("mae").FullName)).Train.LastEpochLoss["loss"];
        foreach (var (name, run) in new (string, Func<ComputePrecision, double>)[] { ("distill", Distilled), ("pretrain-mae", Pretrained) })
        {
            double fp32 = run(ComputePrecision.Float32), bf16 = run(ComputePrecision.BFloat16);
            output.WriteLine($"{name}: fp32 {fp32:G7} bf16 {bf16:G7}");
            Assert.NotEqual(fp32, bf16);
            Assert.True(Math.Abs(bf16 - fp32) < LossTolerance * Math.Abs(fp32), $"{name}: bf16 {bf16} vs fp32 {fp32}");
        }
    }

    [Fact]
    public void ScopesAreThreadLocal()
    {
        using var _ = Autocast.Enable();
        bool other = true;
        var t = new Thread(() => other = Autocast.IsEnabled);
        t.Start();
        t.Join();
        Assert.False(other);
        Assert.True(Autocast.IsEnabled);
    }
}
