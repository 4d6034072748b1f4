using static TorchSharp.torch;

namespace AttnDistill.Checkpoints;

/// <summary>
/// One part of a training state (optimizer, scheduler, RNG, EMA teacher, loss scaler ...): named
/// tensors plus a JSON document whose meaning belongs to the code that wrote it.
/// </summary>
public sealed class CheckpointSection
{
    public Dictionary<string, Tensor> Tensors { get; init; } = new(StringComparer.Ordinal);
    public string Json { get; init; } = "{}";
}
