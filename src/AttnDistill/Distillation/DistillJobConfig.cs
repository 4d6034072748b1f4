using AttnDistill.Models;
using AttnDistill.Training;

namespace AttnDistill.Distillation;

/// <summary>Everything a distillation run needs; the CLI and recipes fill it.</summary>
public sealed record DistillJobConfig
{
    public required string DataRoot { get; init; }
    public required string TeacherPath { get; init; }
    /// <summary>Heads of the teacher when its width is not in the standard table.</summary>
    public int? TeacherHeads { get; init; }
    /// <summary>--pos-embed-resample: how the teacher's table reaches the student's image size; null = the rule of the teacher file's source.</summary>
    public PosEmbedRule? TeacherPosEmbedResample { get; init; }
    public required VitConfig Student { get; init; }
    public int ProjectorLayers { get; init; } = 4;
    public DistillLossOptions Loss { get; init; } = new();
    public DistillationMethod Method { get; init; } = DistillationMethod.AttnDistill;
    public int CompressQueue { get; init; } = CompressLoss.DefaultQueueSize;
    public double CompressTau { get; init; } = CompressLoss.DefaultTau;
    public required TrainerOptions Trainer { get; init; }
    public int Workers { get; init; } = 2;
    /// <summary>RandomResizedCrop's lower scale bound (0.2 in the paper).</summary>
    public double CropScaleMin { get; init; } = 0.2;
    public bool Resume { get; init; }
    /// <summary>bf16: the forward of teacher and student and the loss under autocast (see <see cref="ComputePrecision.BFloat16"/>); the trainer's precision for this run.</summary>
    public ComputePrecision Precision { get; init; } = ComputePrecision.Float32;
    /// <summary>--teacher-cache: folder of the teacher-target cache (filled by the first run, read by later ones); null = the teacher runs every step.</summary>
    public string? TeacherCacheDir { get; init; }
    /// <summary>--teacher-cache-dtype: float32 (a cached run computes exactly what an online one does) or float16 (half the size).</summary>
    public string TeacherCacheDtype { get; init; } = "float32";
}
