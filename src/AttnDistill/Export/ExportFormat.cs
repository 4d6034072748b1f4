namespace AttnDistill.Export;

/// <summary>What `attndistill export` writes.</summary>
public enum ExportFormat
{
    /// <summary>ONNX graph (opset 17) of the backbone, optionally with attention and a head.</summary>
    Onnx,
    /// <summary>torch.save state dict (DINO/timm names): model.load_state_dict(torch.load(p)).</summary>
    Pth,
    /// <summary>safetensors state dict with the ViT config in its metadata.</summary>
    Safetensors,
}

public static class ExportFormats
{
    public static IReadOnlyList<string> Names { get; } = new[] { "onnx", "pth", "safetensors" };

    /// <summary>Parses a --format value, or (when null) takes it from the output file's extension.</summary>
    public static ExportFormat Resolve(string? format, string outPath)
    {
        if (format is not null)
        {
            return format.Trim().ToLowerInvariant() switch
            {
                "onnx" => ExportFormat.Onnx,
                "pth" or "pt" => ExportFormat.Pth,
                "safetensors" => ExportFormat.Safetensors,
                _ => throw new ArgumentException($"unknown --format '{format}': use {string.Join(", ", Names)}."),
            };
        }
        return Path.GetExtension(outPath).ToLowerInvariant() switch
        {
            ".onnx" => ExportFormat.Onnx,
            ".pth" or ".pt" => ExportFormat.Pth,
            ".safetensors" => ExportFormat.Safetensors,
            _ => throw new ArgumentException($"cannot tell the format from --out {outPath}: add --format {string.Join("|", Names)} or end the file name in .onnx, .pth or .safetensors."),
        };
    }
}
