using AttnDistill.Checkpoints;

namespace AttnDistill.Distillation;

/// <summary>
/// Rebuilds a whole <see cref="DistillStudent"/> (backbone, projector, its LayerNorm) from a
/// distillation training checkpoint (checkpoint-*.ckpt): what evaluating a projector layer needs,
/// since backbone.pth holds the backbone alone.
/// </summary>
public static class DistillStudentLoader
{
    public static DistillStudent Load(string checkpointPath, Action<string>? info = null)
    {
        if (!File.Exists(checkpointPath)) throw new FileNotFoundException($"checkpoint not found: {checkpointPath}");
        TrainingCheckpoint ckpt;
        try
        {
            ckpt = TrainingCheckpoint.Load(checkpointPath);
        }
        catch (CheckpointFormatException e)
        {
            throw new CheckpointFormatException(
                $"{checkpointPath} is not a distillation training checkpoint ({e.Message}): --eval-layer above 0 needs the projector, which only checkpoint-*.ckpt files of a distill run hold (backbone.pth/.safetensors have the backbone alone).");
        }
        using var _ = ckpt;
        var cfg = ckpt.ModelConfig ?? throw new CheckpointFormatException($"{checkpointPath} does not record the student's architecture.");
        if (!ckpt.Model.ContainsKey("backbone.cls_token"))
            throw new CheckpointFormatException($"{checkpointPath} is not a distillation checkpoint (no backbone.* entries; is it a MAE or probe run?).");
        int layers = ckpt.Model.Keys.Count(k => k.StartsWith("proj.layers.", StringComparison.Ordinal) && k.EndsWith(".weight", StringComparison.Ordinal)
                                                && ckpt.Model[k].dim() == 2);
        int teacherDim = ckpt.Model.TryGetValue("proj_norm.weight", out var norm) ? (int)norm.shape[0] : cfg.EmbedDim;
        var student = new DistillStudent(cfg, teacherDim, layers);
        try
        {
            StateDictLoader.Load(student, ckpt.Model, info);
        }
        catch
        {
            student.Dispose();
            throw;
        }
        info?.Invoke($"student from {checkpointPath}: projector {layers} layer(s), teacher width {teacherDim}");
        return student;
    }
}
