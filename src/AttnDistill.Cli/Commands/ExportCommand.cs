using System.CommandLine;
using AttnDistill.Checkpoints;
using AttnDistill.Export;

namespace AttnDistill.Cli.Commands;

/// <summary>`attndistill export`: a checkpoint to a file a deployment stack runs (ONNX) or loads (.pth / .safetensors).</summary>
public static class ExportCommand
{
    public static Command Create()
    {
        var cmd = new Command("export", "Write a backbone checkpoint as ONNX (opset 17: image -> normalized CLS feature, optional attention and head outputs), .pth or .safetensors.");
        var config = new Option<string>(RecipeArguments.ConfigOption) { Description = "YAML recipe (keys = these option names)." };
        var ckpt = new Option<string>("--checkpoint") { Description = "Backbone: ours (backbone.safetensors/.pth, checkpoint-*.ckpt), a DINO/MAE/timm checkpoint, or a zoo name (dino_vits16, ...: downloaded once into the torch.hub cache).", Required = true };
        var format = new Option<string?>("--format") { Description = "onnx, pth or safetensors (default: from the --out extension)." };
        format.AcceptOnlyFromAmong(ExportFormats.Names.ToArray());
        var outFile = new Option<string>("--out") { Description = "Output file, written atomically.", Required = true };
        var size = new Option<int?>("--image-size") { Description = "Input size of the exported model (default: the checkpoint's; otherwise the position table is resampled at load by the rule of the file's source, as knn and distill do: see --pos-embed-resample)." };
        var attention = new Option<bool>("--attention") { Description = "ONNX: add the output 'attention', the last block's CLS attention row [batch, heads, 1 + N]." };
        var head = new Option<string?>("--head") { Description = "ONNX: a linear head's state dict (.safetensors/.pth: weight, bias, optional BatchNorm running_mean/var) exported as the output 'logits'." };
        var quantize = new Option<string>("--quantize") { Description = "ONNX: none, or int8 (dynamic quantization of every Linear layer of the backbone).", DefaultValueFactory = _ => "none" };
        quantize.AcceptOnlyFromAmong("none", "int8");
        var key = new Option<string?>("--checkpoint-key") { Description = "Entry of a wrapped checkpoint to export (student, teacher, model, ...); default: the first present." };
        var heads = new Option<int?>("--heads") { Description = "Attention heads, for checkpoints that carry no config and have a non-standard width." };
        var device = Run.DeviceOption();
        device.Description = "cpu, cuda or cuda:N: checked like every command's, but an export only serializes, on the host, whatever the device.";
        var resample = PosEmbedResampleOption.Create();
        var half = new Option<bool>("--half") { Description = "pth/safetensors: store the weights in float16 (half the size; every command reads them back as float32)." };
        foreach (var o in new Option[] { config, ckpt, format, outFile, size, half, attention, head, quantize, key, heads, resample, device }) cmd.Options.Add(o);
        cmd.SetAction((parsed, ct) => Run.Guarded(parsed, ct, stop =>
        {
            string outPath = parsed.GetValue(outFile)!;
            var request = new ExportRequest
            {
                Checkpoint = ZooDownloads.Resolve(parsed.GetValue(ckpt)!, "--checkpoint", stop),
                Out = outPath,
                Format = ExportFormats.Resolve(parsed.GetValue(format), outPath),
                ImageSize = parsed.GetValue(size),
                CheckpointKey = parsed.GetValue(key),
                Inference = new VitInferenceOptions { NumHeads = parsed.GetValue(heads), Resampling = PosEmbedResampleOption.Read(parsed, resample) },
                HeadPath = parsed.GetValue(head), Half = parsed.GetValue(half),
                Onnx = new OnnxExportOptions
                {
                    IncludeAttention = parsed.GetValue(attention),
                    Quantization = parsed.GetValue(quantize) == "int8" ? OnnxQuantization.DynamicInt8 : OnnxQuantization.None,
                },
            };
            var context = Run.Context(parsed, Path.GetDirectoryName(Path.GetFullPath(outPath)) ?? ".", parsed.GetValue(device)!, threads: null, stop, runFolder: false);
            var result = ExportJob.Run(request, context);
            var c = result.Config;
            ConsoleReporting.Summary("export", new[]
            {
                ("file", result.Path),
                ("format", result.Format.ToString().ToLowerInvariant()),
                ("size", $"{result.Bytes / 1048576.0:F1} MiB"),
                ("model", $"ViT depth {c.Depth}, dim {c.EmbedDim}, {c.NumHeads} heads, patch {c.PatchSize}, image {c.ImageSize}"),
                ("outputs", string.Join("; ", result.Outputs)),
            });
            return 0;
        }));
        return cmd;
    }
}
