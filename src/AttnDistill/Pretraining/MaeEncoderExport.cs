using AttnDistill.Checkpoints;
using AttnDistill.Models;
using static TorchSharp.torch;

namespace AttnDistill.Pretraining;

/// <summary>A pre-trained encoder as a teacher backbone: DINO-named weights and the config that rebuilds it.</summary>
/// <param name="StateDict">cls_token, pos_embed, patch_embed.*, blocks.*, norm.* (detached copies).</param>
/// <param name="Config">The encoder's <see cref="VitConfig"/>, PosEmbed = SinCos, so a student can match it.</param>
public sealed record TeacherBackbone(IReadOnlyDictionary<string, Tensor> StateDict, VitConfig Config);

/// <summary>Extracts the MAE encoder for distillation (docs/METHOD.md, section 4.1: decoders are dropped).</summary>
public static class MaeEncoderExport
{
    /// <summary>
    /// Copies of the encoder's tensors under the DINO/timm names a <see cref="VisionTransformer"/>
    /// uses, so the result loads into <c>new VisionTransformer(Config)</c> key for key. The
    /// caller owns (disposes) the tensors.
    /// </summary>
    public static TeacherBackbone ExtractTeacher(MaskedAutoencoder mae)
    {
        var dict = new Dictionary<string, Tensor>();
        using (no_grad())
            foreach (var (name, t) in mae.Encoder.state_dict())
                dict[name] = t.detach().clone();
        return new TeacherBackbone(dict, mae.Config.Encoder with { PosEmbed = PosEmbedKind.SinCos });
    }

    /// <summary>
    /// Writes the encoder as a teacher checkpoint that <c>distill</c> loads directly: ".safetensors"
    /// carries the VitConfig (PosEmbed = SinCos) in its metadata; any other extension is a
    /// torch.save-compatible .pth state dict (the sin-cos table is then recognised by its values).
    /// </summary>
    public static void SaveTeacher(MaskedAutoencoder mae, string path)
    {
        var teacher = ExtractTeacher(mae);
        try
        {
            if (path.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase))
                BackboneExport.SaveSafetensors(teacher.StateDict, path, teacher.Config);
            else
                BackboneExport.SavePth(teacher.StateDict, path);
        }
        finally
        {
            foreach (var t in teacher.StateDict.Values) t.Dispose();
        }
    }
}
