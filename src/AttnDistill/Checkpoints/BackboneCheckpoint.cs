using AttnDistill.Models;
using static TorchSharp.torch;

namespace AttnDistill.Checkpoints;

/// <summary>
/// The ViT backbone tensors read from a checkpoint, with DINO/timm names and in timm's order, plus
/// what the reader did to get them. Owns the tensors: dispose it (or take them) when done.
/// </summary>
public sealed class BackboneCheckpoint : IDisposable
{
    public required string Path { get; init; }
    public required CheckpointFormat Format { get; init; }
    /// <summary>Backbone name -> tensor (CPU), ordered cls_token, pos_embed, patch_embed, blocks, norm.</summary>
    public required Dictionary<string, Tensor> Tensors { get; init; }
    /// <summary>The wrapper entries descended into ("teacher", "model", "state_dict/model"), or null for a plain state dict.</summary>
    public string? WrapperKey { get; init; }
    /// <summary>Entries left out (heads, decoders, non-tensors), by their names in the file.</summary>
    public IReadOnlyList<string> IgnoredKeys { get; init; } = Array.Empty<string>();
    /// <summary>The configuration stored in the file when we wrote it; null for other checkpoints (infer it).</summary>
    public VitConfig? Config { get; init; }
    /// <summary>A fine-tuned classifier's fc_norm.* and head.* (timm/MAE names), read only when asked for; empty otherwise.</summary>
    public Dictionary<string, Tensor> Classifier { get; init; } = new(StringComparer.Ordinal);

    /// <summary>One line for logs: format, wrapper, counts, the architecture the tensors fit.</summary>
    public string Summary()
    {
        string from = WrapperKey is null ? "" : $" under '{WrapperKey}'";
        string ignored = IgnoredKeys.Count == 0 ? "" : $", ignored {IgnoredKeys.Count} ({string.Join(", ", GroupIgnored())})";
        return $"{System.IO.Path.GetFileName(Path)}: {Format}{from}, {Tensors.Count} backbone tensors{ignored}; {VitArchitectureInference.Describe(Tensors)}";
    }

    IEnumerable<string> GroupIgnored()
        => IgnoredKeys.GroupBy(k => k.Split('.')[0]).Select(g => g.Count() == 1 ? g.First() : $"{g.Key}.* x{g.Count()}").Take(6);

    public void Dispose()
    {
        foreach (var t in Tensors.Values) t.Dispose();
        Tensors.Clear();
        foreach (var t in Classifier.Values) t.Dispose();
        Classifier.Clear();
    }
}
