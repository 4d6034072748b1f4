using AttnDistill.Models;

namespace AttnDistill.Checkpoints;

/// <summary>Builds a ViT from any supported checkpoint: ours (config inside) or a PyTorch one (config inferred).</summary>
public static class BackboneLoader
{
    public static VisionTransformer Load(string path, VitInferenceOptions? options = null, Action<string>? log = null)
    {
        if (!File.Exists(path))
            throw new FileNotFoundException($"checkpoint '{path}' does not exist: check the path (a .pth, .pt or .safetensors file).", path);
        using var ckpt = CheckpointReader.Read(path);
        log?.Invoke(ckpt.Summary());
        var config = ckpt.Config ?? VitArchitectureInference.Infer(ckpt.Tensors, options);
        var model = new VisionTransformer(config);
        try
        {
            var report = StateDictLoader.Load(model, ckpt.Tensors, log);
            foreach (var note in report.Notes) log?.Invoke(note);
        }
        catch
        {
            model.Dispose();
            throw;
        }
        return model;
    }
}
