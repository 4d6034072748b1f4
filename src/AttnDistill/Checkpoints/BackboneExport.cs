using System.Collections;
using AttnDistill.Models;
using TorchSharp.PyBridge;
using static TorchSharp.torch;
using Module = TorchSharp.torch.nn.Module;

namespace AttnDistill.Checkpoints;

/// <summary>
/// Saves a model's state dict (DINO/timm names) in forms PyTorch and timm load directly:
/// a torch.save-compatible .pth (model.load_state_dict(torch.load(p))) and .safetensors (which also
/// carries the <see cref="VitConfig"/> in its metadata when given). Both are written atomically.
/// </summary>
public static class BackboneExport
{
    /// <summary>Picks the format from the extension: ".safetensors", else .pth.</summary>
    public static void Save(Module model, string path, VitConfig? config = null)
    {
        if (path.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase)) SaveSafetensors(model, path, config);
        else SavePth(model, path);
    }

    public static void SavePth(Module model, string path) => SavePth(model.state_dict(), path);

    public static void SavePth(IReadOnlyDictionary<string, Tensor> stateDict, string path)
    {
        using var scope = NewDisposeScope();
        // Fresh contiguous CPU copies: PyBridge writes each tensor's bytes as its own storage, which is
        // only right for a non-view tensor at offset 0.
        var table = new Hashtable();
        foreach (var (k, t) in stateDict) table[k] = t.detach().cpu().contiguous().clone();
        AtomicFile.Write(path, s => PyTorchPickler.PickleStateDict(s, table, leaveOpen: true));
    }

    public static void SaveSafetensors(Module model, string path, VitConfig? config = null) => SaveSafetensors(model.state_dict(), path, config);

    public static void SaveSafetensors(IReadOnlyDictionary<string, Tensor> stateDict, string path, VitConfig? config = null)
    {
        var meta = new Dictionary<string, string>
        {
            [CheckpointMetadata.PythonFormat] = "pt",
            [CheckpointMetadata.Kind] = CheckpointMetadata.KindBackbone,
        };
        if (config is not null) meta[CheckpointMetadata.VitConfig] = VitConfigJson.Serialize(config);
        SafetensorsFile.Write(path, stateDict, meta);
    }
}
