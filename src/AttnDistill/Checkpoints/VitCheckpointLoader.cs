using AttnDistill.Models;

namespace AttnDistill.Checkpoints;

/// <summary>
/// One call from a checkpoint file to a ready ViT: read the backbone, take the stored config (files
/// we wrote) or infer it, optionally move it to another image size (pos_embed is then resampled by
/// the rule of the file's source, <see cref="PosEmbedSource"/>), build the model and load it strictly.
/// </summary>
public static class VitCheckpointLoader
{
    /// <param name="path">A .pth (zip), .safetensors or training checkpoint.</param>
    /// <param name="options">Heads / preset / position-embedding kind for checkpoints that do not carry a config.</param>
    /// <param name="checkpointKey">Wrapper entry to use ("teacher", "student", ...); null picks the first present.</param>
    /// <param name="imageSize">Build the model for this input size instead of the checkpoint's.</param>
    /// <param name="info">Receives what was done (source, ignored keys, resampling).</param>
    public static (VisionTransformer Model, VitConfig Config) Load(string path, VitInferenceOptions? options = null,
        string? checkpointKey = null, int? imageSize = null, Action<string>? info = null)
    {
        var (model, cfg, classifier) = LoadWithClassifier(path, options, checkpointKey, imageSize, info, keepClassifier: false);
        foreach (var t in classifier.Values) t.Dispose();
        return (model, cfg);
    }

    /// <summary>
    /// As <see cref="Load"/>, and also the fine-tuned classifier the file holds (fc_norm.*, head.*;
    /// empty when none): the caller owns those tensors. A global-pool classifier is accepted.
    /// </summary>
    public static (VisionTransformer Model, VitConfig Config, Dictionary<string, TorchSharp.torch.Tensor> Classifier) LoadWithClassifier(string path,
        VitInferenceOptions? options = null, string? checkpointKey = null, int? imageSize = null, Action<string>? info = null, bool keepClassifier = true)
    {
        using var ckpt = CheckpointReader.Read(path, checkpointKey, keepClassifier);
        info?.Invoke(ckpt.Summary());
        var cfg = ckpt.Config ?? VitArchitectureInference.Infer(ckpt.Tensors, options);
        if (ckpt.Config is not null && options?.NumHeads is int h) cfg = cfg with { NumHeads = h };
        if (imageSize is int size) cfg = (cfg with { ImageSize = size }).Validate();
        var model = new VisionTransformer(cfg);
        try
        {
            var source = PosEmbedSource.Of(ckpt);
            if (options?.Resampling is PosEmbedRule rule && rule != source.Rule)
                source = new PosEmbedSource(rule, false, $"the rule asked for ({rule.ToString().ToLowerInvariant()}; the file looks like {source.Why})");
            StateDictLoader.Load(model, ckpt.Tensors, info, source);
        }
        catch
        {
            model.Dispose();
            throw;
        }
        // Taken out of the checkpoint before it is disposed: the caller owns them now.
        var classifier = new Dictionary<string, TorchSharp.torch.Tensor>(ckpt.Classifier, StringComparer.Ordinal);
        ckpt.Classifier.Clear();
        return (model, cfg, classifier);
    }
}
