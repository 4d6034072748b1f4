namespace AttnDistill.Checkpoints;

/// <summary>The safetensors metadata keys of files we write.</summary>
public static class CheckpointMetadata
{
    /// <summary>"backbone" (an exported state dict) or "training" (a <see cref="TrainingCheckpoint"/>).</summary>
    public const string Kind = "attndistill.kind";
    public const string KindBackbone = "backbone";
    public const string KindTraining = "training";
    /// <summary>The model's <see cref="AttnDistill.Models.VitConfig"/> as JSON.</summary>
    public const string VitConfig = "attndistill.vit_config";
    /// <summary>safetensors readers in Python (safetensors.torch) expect this entry.</summary>
    public const string PythonFormat = "format";
}
