using AttnDistill.Distillation;
using AttnDistill.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace AttnDistill.Visualization;

/// <summary>
/// The attention of a teacher and its students on one batch of images (Figures 9-11 of the
/// supplement): per-head CLS rows, aggregated maps and each student's KL distance to the teacher,
/// computed with the loss's own functions (<see cref="AttentionDistillLoss.PrepareMaps"/>,
/// <see cref="AttentionDivergence.KlBatchMean"/>) so the pictures show exactly what the loss sees.
/// All tensors are float32 on the CPU.
/// </summary>
public sealed class AttentionMapSet : IDisposable
{
    AttentionMapSet(ModelAttention teacher, IReadOnlyList<ModelAttention> students, int count)
    {
        Teacher = teacher;
        Students = students;
        Count = count;
    }

    public ModelAttention Teacher { get; }
    public IReadOnlyList<ModelAttention> Students { get; }

    /// <summary>Images in the batch.</summary>
    public int Count { get; }

    /// <summary>
    /// Runs every model on <paramref name="images"/> (normalized, (B, C, S, S), each model's patch size
    /// must divide S) in eval mode without gradients, and prepares the maps with the loss switches of
    /// <paramref name="loss"/> (aggregation, T, interpolation, clamps, value weighting). Only the last
    /// block is shown, also when the loss uses every block. Modes of the models are restored.
    /// </summary>
    public static AttentionMapSet Compute(NamedModel teacher, IReadOnlyList<NamedModel> students, Tensor images, DistillLossOptions loss)
    {
        ArgumentNullException.ThrowIfNull(teacher);
        ArgumentNullException.ThrowIfNull(students);
        ArgumentNullException.ThrowIfNull(loss);
        if (loss.Aggregation == AttentionAggregation.None)
            throw new ArgumentException("the attention pictures show aggregated maps: choose an aggregation (product, max, mean or min), not none.");
        if (images.dim() != 4) throw new ArgumentException($"images must be (B, C, S, S), got [{string.Join(", ", images.shape)}].");
        int count = (int)images.shape[0];

        using var scope = NewDisposeScope();
        var (tRows, tNorms) = LastBlock(teacher.Model, images, loss.WeightByValue);
        // The teacher's own map: PrepareMaps of the teacher against itself is steps 4-5 on its own grid.
        var tAggregated = AttentionDistillLoss.PrepareMaps(loss, tRows, tRows, tNorms, tNorms).Teacher;
        var teacherMaps = new ModelAttention(teacher.Name, Keep(tRows), Keep(tAggregated), null);

        var studentMaps = new List<ModelAttention>();
        foreach (var student in students)
        {
            var (sRows, sNorms) = LastBlock(student.Model, images, loss.WeightByValue);
            var (s, t) = AttentionDistillLoss.PrepareMaps(loss, sRows, tRows, sNorms, tNorms);  // (B, 1 + N_s) each
            // One image at a time through the loss's own KL (batchmean over a batch of 1 = that image's KL).
            var kl = stack(Enumerable.Range(0, count)
                .Select(b => AttentionDivergence.KlBatchMean(t.narrow(0, b, 1), s.narrow(0, b, 1))).ToArray()); // (B)
            studentMaps.Add(new ModelAttention(student.Name, Keep(sRows), Keep(s), Keep(kl)));
        }
        return new AttentionMapSet(teacherMaps, studentMaps, count);
    }

    static Tensor Keep(Tensor t) => t.detach().to(ScalarType.Float32).cpu().contiguous().MoveToOuterDisposeScope();

    static (Tensor Rows, Tensor? ValueNorms) LastBlock(VisionTransformer model, Tensor images, bool valueNorms)
    {
        if (images.shape[2] % model.Config.PatchSize != 0 || images.shape[3] % model.Config.PatchSize != 0)
            throw new ArgumentException($"the image size {images.shape[2]}x{images.shape[3]} is not a multiple of a model's patch size {model.Config.PatchSize}: pick an image size all patch sizes divide.");
        bool wasTraining = model.training;
        model.eval();
        try
        {
            using var _ = no_grad();
            var device = model.parameters().FirstOrDefault()?.device ?? CPU;
            var f = model.ForwardFeatures(images.to(device), AttentionRequest.LastBlock, valueNorms);
            f.Hidden.Dispose();
            var a = f.Attention[^1];
            return (a.ClsAttention, a.ValueNorms);                                           // (B, h, 1 + N)
        }
        finally
        {
            model.train(wasTraining);
        }
    }

    public void Dispose()
    {
        Teacher.Dispose();
        foreach (var s in Students) s.Dispose();
    }
}
