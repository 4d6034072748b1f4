using AttnDistill.Checkpoints;
using static TorchSharp.torch;

namespace AttnDistill.Export;

/// <summary>
/// `attndistill export`: a checkpoint in, one deployable file out: ONNX (<see cref="VitOnnxExporter"/>),
/// or the backbone state dict as .pth / .safetensors (<see cref="BackboneExport"/>). Inputs are
/// checked before the model is loaded, with messages that name the fix.
/// <para>
/// The run's device does not change the file: an export is a serialization, whose weights are read
/// on the host whatever device asked for it, so the model is loaded on the host and nothing is
/// computed on an accelerator.
/// </para>
/// </summary>
public static class ExportJob
{
    public static ExportResult Run(ExportRequest request, Runs.RunContext ctx)
    {
        var info = ctx.Log;
        Validate(request);
        string outPath = Path.GetFullPath(request.Out);
        EnsureWritable(outPath);
        // The head file is read first: a wrong one fails before the (larger) checkpoint is loaded.
        using var head = request.HeadPath is null ? null : ClassifierHeadFile.Read(request.HeadPath);
        if (head is not null)
            info?.Invoke($"head: {head.NumClasses} classes from {head.InFeatures} features{(head.HasBatchNorm ? ", BatchNorm (eval) first" : "")}");

        using var noGrad = no_grad();
        // Built at the requested size: pos_embed is resampled at load by the rule of the file's
        // source (named in the log), the same table knn, linear and distill use at that size.
        var (model, cfg) = VitCheckpointLoader.Load(request.Checkpoint, request.Inference, request.CheckpointKey, imageSize: request.ImageSize, info);
        using (model)
        {
            model.eval();
            if (request.Format is ExportFormat.Pth or ExportFormat.Safetensors)
            {
                var state = VitOnnxExporter.StateDictAt(model, null);
                if (request.Half)
                    foreach (var k in state.Keys.ToList())
                        if (state[k].is_floating_point()) { var half = state[k].to(ScalarType.Float16); state[k].Dispose(); state[k] = half; }
                try
                {
                    if (request.Format == ExportFormat.Pth) BackboneExport.SavePth(state, outPath);
                    else BackboneExport.SaveSafetensors(state, outPath, cfg);
                }
                finally
                {
                    foreach (var t in state.Values) t.Dispose();
                }
                return new ExportResult(outPath, request.Format, new FileInfo(outPath).Length, cfg,
                    new[] { (request.Format == ExportFormat.Pth ? "state dict (torch.save)" : "state dict (safetensors, with config)") + (request.Half ? ", float16" : "") });
            }

            var proto = VitOnnxExporter.Build(model, request.Onnx with { ImageSize = cfg.ImageSize }, head);
            long bytes = VitOnnxExporter.Save(proto, outPath);
            var outputs = proto.Graph.Output.Select(o =>
                $"{o.Name} [{string.Join(", ", o.Type.TensorType.Shape.Dim.Select(d => d.DimParam is { Length: > 0 } p ? p : d.DimValue.ToString()))}]").ToList();
            return new ExportResult(outPath, request.Format, bytes, cfg, outputs);
        }
    }

    static void Validate(ExportRequest r)
    {
        if (string.IsNullOrWhiteSpace(r.Checkpoint))
            throw new ArgumentException("--checkpoint is empty: pass a backbone checkpoint (.safetensors/.pth/.ckpt).");
        if (!File.Exists(r.Checkpoint))
            throw new FileNotFoundException(Directory.Exists(r.Checkpoint)
                ? $"--checkpoint {r.Checkpoint} is a folder: pass a file in it, e.g. {Path.Combine(r.Checkpoint, "backbone.safetensors")}."
                : $"--checkpoint {r.Checkpoint}: file not found. Pass a backbone checkpoint (backbone.safetensors/.pth of a run, a checkpoint-*.ckpt, or a DINO/MAE/timm .pth).", r.Checkpoint);
        if (r.Format != ExportFormat.Onnx)
        {
            string fmt = r.Format.ToString().ToLowerInvariant();
            if (r.HeadPath is not null) throw new ArgumentException($"--head is exported only with --format onnx (a {fmt} file holds the backbone's state dict); leave --head out or use --format onnx.");
            if (r.Onnx.IncludeAttention) throw new ArgumentException($"--attention is an output of the ONNX graph; leave it out for --format {fmt}.");
            if (r.Onnx.Quantization != OnnxQuantization.None) throw new ArgumentException($"--quantize applies to --format onnx only; leave it out for --format {fmt}.");
        }
        else if (r.Half) throw new ArgumentException("--half stores a .pth or .safetensors state dict in float16; for ONNX use --quantize int8, or leave --half out.");
        if (r.ImageSize is <= 0) throw new ArgumentException($"--image-size must be positive, got {r.ImageSize}.");
    }

    /// <summary>Fails early, before a model is loaded, when <paramref name="path"/> cannot be written.</summary>
    public static void EnsureWritable(string path)
    {
        if (Directory.Exists(path))
            throw new IOException($"--out {path} is a folder: give a file name, e.g. {Path.Combine(path, "student.onnx")}.");
        string probe = AtomicFile.TempPathFor(path);
        try
        {
            string? dir = Path.GetDirectoryName(path);
            if (!string.IsNullOrEmpty(dir)) Directory.CreateDirectory(dir);
            using (new FileStream(probe, FileMode.Create, FileAccess.Write, FileShare.None)) { }
            File.Delete(probe);
        }
        catch (Exception ex) when (ex is UnauthorizedAccessException or IOException)
        {
            throw new IOException($"--out {path}: cannot write there ({ex.Message}). Choose a path in a folder you can write to.", ex);
        }
    }
}
