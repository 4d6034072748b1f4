using AttnDistill.Distillation;
using static TorchSharp.torch;

namespace AttnDistill.Benchmarks;

/// <summary>
/// The parts of a distillation step that are not matrix products, timed alone to see whether they
/// are worth a lever: TorchSharp's AdamW step (a C# loop of about seven small ops per parameter
/// tensor; 0.107 has no foreach or fused option) and the attention-distillation loss (forward and
/// backward on the CLS features and rows). Their FLOP count is 0: compare their seconds with the step's.
/// </summary>
public static class StepOverheadCases
{
    public static IReadOnlyList<BenchCase> Create(BenchShapes shapes, DistillShape shape, long seed = 0)
    {
        var built = DistillStepCases.Build(shapes, shape, DistillVariant.Fp32, seed);
        // AdamW only: gradients filled once, step() repeated (zero_grad is not called).
        using (no_grad())
            foreach (var p in built.Student.parameters())
                p.grad = randn_like(p).mul_(1e-3);
        var optimizer = built.Harness.Trainer.Optimizer;
        var adamw = new BenchCase(shape.Id, "adamw-step-only", 0, shape.BatchSize, () => optimizer.step(), built.Dispose);

        // The loss on tensors shaped like the step's: features (B, D_t), CLS rows (B, h, 1 + N).
        var t = shapes.TeacherFor(shape);
        var s = shapes.StudentFor(shape);
        long b = shape.BatchSize, n = 1 + s.NumPatches;
        var g = new Generator((ulong)seed);
        var fs = randn(new long[] { b, t.EmbedDim }, generator: g).requires_grad_();
        var ft = randn(new long[] { b, t.EmbedDim }, generator: g);
        var ls = randn(new long[] { b, s.NumHeads, n }, generator: g).requires_grad_();
        var at = randn(new long[] { b, t.NumHeads, 1 + t.NumPatches }, generator: g).softmax(-1);
        var options = new DistillLossOptions();
        void Loss()
        {
            using var scope = NewDisposeScope();
            var parts = AttentionDistillLoss.Compute(options, fs, ft, new[] { ls.softmax(-1) }, new[] { at });
            parts.Total.backward();
            _ = parts.Total.item<float>();
            fs.grad?.zero_();
            ls.grad?.zero_();
        }
        var loss = new BenchCase(shape.Id, "loss-only", 0, shape.BatchSize, Loss, () => { fs.Dispose(); ft.Dispose(); ls.Dispose(); at.Dispose(); });
        return new[] { adamw, loss };
    }
}
