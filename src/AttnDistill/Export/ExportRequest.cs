using AttnDistill.Checkpoints;

namespace AttnDistill.Export;

/// <summary>One `attndistill export`: which checkpoint, what to write where.</summary>
public sealed record ExportRequest
{
    public required string Checkpoint { get; init; }
    public required string Out { get; init; }
    public required ExportFormat Format { get; init; }

    /// <summary>pth/safetensors only: store the weights as float16 (half the size; what a committed reference teacher uses) instead of float32.</summary>
    public bool Half { get; init; }

    /// <summary>Export for this input size (the position table is resampled by the file's source rule); null = the checkpoint's.</summary>
    public int? ImageSize { get; init; }

    /// <summary>Wrapper entry of the checkpoint ("student", "teacher", ...); null = the first present.</summary>
    public string? CheckpointKey { get; init; }

    /// <summary>Heads / preset for checkpoints that carry no config.</summary>
    public VitInferenceOptions? Inference { get; init; }

    /// <summary>ONNX only: a linear head's state dict, exported as the "logits" output.</summary>
    public string? HeadPath { get; init; }

    /// <summary>ONNX only.</summary>
    public OnnxExportOptions Onnx { get; init; } = new();
}

/// <summary>What was written.</summary>
public sealed record ExportResult(string Path, ExportFormat Format, long Bytes, Models.VitConfig Config, IReadOnlyList<string> Outputs);
