using TorchSharp;
using AttnDistill.Checkpoints;
using AttnDistill.Distillation;
using AttnDistill.Models;
using static TorchSharp.torch;

namespace AttnDistill.Evaluation;

/// <summary>
/// The frozen feature function every evaluation protocol reads: images -> [B, D]. Layer 0 is a
/// backbone's normalized CLS token from any checkpoint (ours, DINO, MAE, timm); layer k > 0 is the
/// k-th projector layer of a distilled student (Table 10(d) "evaluation P layer"), which needs the
/// distillation run's training checkpoint. <see cref="Pixels"/> ("pixels") is the identity
/// backbone: the evaluation transform's normalized pixels, flattened to C*H*W, the floor every
/// learned feature must beat.
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

    /// <summary>The --checkpoint value that selects the identity backbone (the pixel floor).</summary>
    public const string Pixels = "pixels";

    /// <summary>True for the pixel floor's checkpoint name.</summary>
    public static bool IsPixels(string checkpoint) => checkpoint == Pixels;

    /// <summary>Architecture of the ViT inside (for the pixel floor: only the input size and channels mean anything).</summary>
    public VitConfig Config { get; }
    public int Layer => _layer;

    /// <summary>Where the features are computed (the pixel floor has no parameter to tell it by).</summary>
    public Device Device { get; private set; } = CPU;

    /// <param name="imageSize">Evaluation crop size; the position table is resampled to it.</param>
    /// <param name="layer">0: backbone output; k: projector layer k (1-based; projector layers + 1 = its final LayerNorm).</param>
    /// <param name="device">Where the model is put and its features computed (read on the host, then moved).</param>
    public static EvaluatedBackbone Load(string checkpoint, int imageSize, int layer = 0, VitInferenceOptions? options = null, Action<string>? log = null, Device? device = null)
    {
        var result = LoadOnHost(checkpoint, imageSize, layer, options, log);
        if (device is not null && device.type != DeviceType.CPU)
        {
            result.to(device);
            result.Device = device;
        }
        return result;
    }

    private static EvaluatedBackbone LoadOnHost(string checkpoint, int imageSize, int layer, VitInferenceOptions? options, Action<string>? log)
    {
        if (IsPixels(checkpoint))
        {
            if (layer != 0) throw new ArgumentException($"--eval-layer {layer} needs a distilled student; --checkpoint {Pixels} (the raw pixels) has only layer 0.");
            // The loaders give 3-channel images (grayscale is replicated), so the floor reads C = 3.
            var pixels = new EvaluatedBackbone(new FlattenPixels(), 0, new VitConfig { ImageSize = imageSize, PatchSize = 1, EmbedDim = 3 * imageSize * imageSize, Depth = 0, NumHeads = 1 });
            pixels.eval();
            return pixels;
        }
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

    /// <summary>images [B, C, H, W] -> [B, C*H*W].</summary>
    sealed class FlattenPixels : nn.Module<Tensor, Tensor>
    {
        public FlattenPixels() : base(nameof(FlattenPixels)) { }

        public override Tensor forward(Tensor images) => images.flatten(1);
    }

    public override Tensor forward(Tensor images) =>
        _layer == 0 ? _model.forward(images) : ((DistillStudent)_model).EvaluationFeature(images, _layer);
}
