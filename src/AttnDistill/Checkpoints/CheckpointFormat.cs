namespace AttnDistill.Checkpoints;

/// <summary>The container a checkpoint file uses, recognised by its first bytes.</summary>
public enum CheckpointFormat
{
    /// <summary>torch.save's zip archive (PyTorch 1.6 and later).</summary>
    PyTorchZip,
    /// <summary>torch.save's legacy (pre-1.6) format: not readable here.</summary>
    PyTorchLegacy,
    /// <summary>A safetensors file (ours, timm's or Hugging Face's).</summary>
    Safetensors,
    Unknown,
}
