using AttnDistill.Checkpoints;
using AttnDistill.Distillation;
using AttnDistill.Models;
using static TorchSharp.torch;

namespace AttnDistill.Evaluation;

/// <summary>
/// The frozen feature function every evaluation protocol reads: images -> [B, D]. Layer 0 is a
/// backbone's normalized CLS token from any checkpoint (ours, DINO, MAE, timm); layer k > 0 is the
/// k-th projector layer of a distilled student (Table 10(d) "evaluation P layer"), which needs the
/// distillation run's training checkpoint.
/// </summary>
public sealed class EvaluatedBackbone : nn.Module<Tensor, Tensor>
{
    private readonly nn.Module<Tensor, Tensor> _model;
    private readonly int _layer;

    private EvaluatedBackbone(nn.Module<Tensor, Tensor> model, int layer, VitConfig config) : base(nameof(EvaluatedBackbone))
    {
        _model = model;
        _layer = layer;
        Config = config;
        register_module("model", model);
    }

    /// <summary>Architecture of the ViT inside.</summary>
    public VitConfig Config { get; }
    public int Layer => _layer;

    /// <param name="imageSize">Evaluation crop size; the position table is resampled to it.</param>
    /// <param name="layer">0: backbone output; k: projector layer k (1-based; projector layers + 1 = its final LayerNorm).</param>
    public static EvaluatedBackbone Load(string checkpoint, int imageSize, int layer = 0, VitInferenceOptions? options = null, Action<string>? log = null)
    {
        if (layer < 0) throw new ArgumentException($"--eval-layer must be >= 0 (0 = the backbone's output), got {layer}.");
        if (!File.Exists(checkpoint)) throw new FileNotFoundException($"--checkpoint {checkpoint}: no such file; give a backbone file (backbone.safetensors/.pth, a DINO/MAE/timm checkpoint) or, with --eval-layer, a distill run's checkpoint-*.ckpt.");
        EvaluatedBackbone result;
        if (layer == 0)
        {
            VisionTransformer vit;
            VitConfig cfg;
            try { (vit, cfg) = VitCheckpointLoader.Load(checkpoint, options, imageSize: imageSize, info: log); }
            catch (CheckpointFormatException ex) { throw new CheckpointFormatException($"--checkpoint {ex.Message}", ex); }
            catch (ArgumentException ex) { throw new ArgumentException($"--checkpoint {checkpoint}: {ex.Message}", ex); }
            result = new EvaluatedBackbone(vit, 0, cfg);
        }
        else
        {
            var student = DistillStudentLoader.Load(checkpoint, log);
            if (layer > student.ProjectorLayers + 1)
            {
                int max = student.ProjectorLayers + (student.ProjectorLayers > 0 ? 1 : 0);
                student.Dispose();
                throw new ArgumentException($"--eval-layer {layer} is past the student's projector ({max} evaluable layer(s) after the backbone): use 0..{max}.");
            }
            result = new EvaluatedBackbone(student, layer, student.Backbone.Config);
        }
        result.eval();
        foreach (var p in result.parameters()) p.requires_grad = false;
        return result;
    }

    public override Tensor forward(Tensor images) =>
        _layer == 0 ? _model.forward(images) : ((DistillStudent)_model).EvaluationFeature(images, _layer);
}
