using AttnDistill.Tensors;
using AttnDistill.Checkpoints;
using AttnDistill.Models;
using Google.Protobuf;
using Onnx;
using static AttnDistill.Export.OnnxGraphBuilder;
using static TorchSharp.torch;
using DataType = Onnx.TensorProto.Types.DataType;

namespace AttnDistill.Export;

/// <summary>
/// The ONNX graph (opset 17, IR version 8) of a <see cref="VisionTransformer"/> backbone at its
/// configured image size: input "image" (batch, C, S, S) float32, output "feature" (batch, D) = the
/// final LayerNorm of the CLS token (the backbone's forward), optionally "attention" (batch, heads,
/// 1 + N) = the last block's post-softmax CLS row (<see cref="VisionTransformer.GetLastSelfAttention"/>:
/// CLS-to-CLS first, then the N patches in raster order) and "logits" (batch, classes) from a
/// <see cref="ClassifierHead"/>. The batch size is dynamic. Standard ops only; initializers carry
/// the state-dict names (Linear weights keep PyTorch's (out, in) layout and run as Gemm with transB).
/// </summary>
public static class VitOnnxExporter
{
    public const int OpsetVersion = 17;
    /// <summary>IR version 8 is ONNX 1.12's, the newest that opset 17 needs (so 1.12 checkers and runtimes read it).</summary>
    public const long IrVersion = 8;
    public const string ImageInput = "image";
    public const string FeatureOutput = "feature";
    public const string AttentionOutput = "attention";
    public const string LogitsOutput = "logits";

    /// <summary>Builds the model proto; <paramref name="model"/> is read, not changed.</summary>
    public static ModelProto Build(VisionTransformer model, OnnxExportOptions? options = null, ClassifierHead? head = null)
    {
        options ??= new OnnxExportOptions();
        var cfg = ExportedConfig(model.Config, options.ImageSize);
        if (head is not null && head.InFeatures != cfg.EmbedDim)
            throw new ArgumentException($"the head takes {head.InFeatures} features but the backbone gives {cfg.EmbedDim}: pass the head trained on this backbone.");
        GraphProto graph;
        using (var emitter = new VitGraph(model, options)) graph = emitter.Emit(head);
        var proto = new ModelProto
        {
            IrVersion = IrVersion,
            ProducerName = "attndistill",
            ProducerVersion = typeof(VitOnnxExporter).Assembly.GetName().Version?.ToString() ?? "",
            Graph = graph,
            DocString = $"Vision Transformer backbone (normalized CLS feature). Input '{ImageInput}': float32 images " +
                        $"[{options.BatchDimension}, {cfg.InChans}, {cfg.ImageSize}, {cfg.ImageSize}] preprocessed as in training " +
                        "(pixels / 255, then the per-channel mean/std normalization, ImageNet's for RGB).",
        };
        proto.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = OpsetVersion });
        proto.MetadataProps.Add(new StringStringEntryProto { Key = CheckpointMetadata.VitConfig, Value = VitConfigJson.Serialize(cfg) });
        proto.MetadataProps.Add(new StringStringEntryProto { Key = "quantization", Value = options.Quantization.ToString() });
        return proto;
    }

    /// <summary>The model's config at the exported input size (checked: the patch must divide it).</summary>
    public static VitConfig ExportedConfig(VitConfig trained, int? imageSize) =>
        imageSize is int s && s != trained.ImageSize ? (trained with { ImageSize = s }).Validate() : trained;

    /// <summary>
    /// The backbone's state dict for inputs of <paramref name="imageSize"/> px: pos_embed is the table
    /// the model uses at that size (see <see cref="OnnxExportOptions.ImageSize"/>). New tensors; the caller disposes them.
    /// </summary>
    public static Dictionary<string, Tensor> StateDictAt(VisionTransformer model, int? imageSize)
    {
        var cfg = ExportedConfig(model.Config, imageSize);
        using var scope = NewDisposeScope();
        var result = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var (key, t) in model.state_dict())
        {
            var source = key == "pos_embed" ? model.PositionTableFor(cfg.GridSize, cfg.GridSize) : t;
            result[key] = source.detach().contiguous().clone().MoveToOuterDisposeScope();
        }
        return result;
    }

    /// <summary>Writes the model atomically (see <see cref="AtomicFile"/>); returns the file size in bytes.</summary>
    public static long Save(ModelProto model, string path)
    {
        long size = model.CalculateSize();
        // protobuf messages are limited to 2 GiB; beyond that ONNX needs external data files.
        if (size >= int.MaxValue)
            throw new ArgumentException($"the ONNX model would be {size / (1 << 20)} MiB, over protobuf's 2 GiB limit: export a smaller model, or use --format safetensors.");
        AtomicFile.Write(path, s => model.WriteTo(s));
        return size;
    }

    /// <summary>Emits one ViT: owns the builder and reads tensors from the model's state dict.</summary>
    sealed class VitGraph : IDisposable
    {
        readonly VitConfig _cfg;
        readonly OnnxExportOptions _options;
        readonly Dictionary<string, Tensor> _state;
        readonly OnnxGraphBuilder _g = new("attndistill_vit");
        readonly string _batch;

        public VitGraph(VisionTransformer model, OnnxExportOptions options)
        {
            _cfg = ExportedConfig(model.Config, options.ImageSize);
            _options = options;
            _state = StateDictAt(model, options.ImageSize);
            _batch = options.BatchDimension;
        }

        public void Dispose()
        {
            foreach (var t in _state.Values) t.Dispose();
        }

        string Param(string key)
        {
            if (!_state.TryGetValue(key, out var t)) throw new InvalidOperationException($"the model has no tensor '{key}'.");
            return _g.Initializer(key, t);
        }

        public GraphProto Emit(ClassifierHead? head)
        {
            long d = _cfg.EmbedDim, t = 1 + _cfg.NumPatches;
            var image = _g.Input(ImageInput, DataType.Float, _batch, (long)_cfg.InChans, (long)_cfg.ImageSize, (long)_cfg.ImageSize);

            // Patch embedding: (B, C, S, S) -> (B, D, g, g) -> (B, D, N) -> (B, N, D).
            _g.Scope = "patch_embed";
            var conv = _g.Node("Conv", new[] { image, Param("patch_embed.proj.weight"), Param("patch_embed.proj.bias") }, "proj",
                Attr("kernel_shape", _cfg.PatchSize, _cfg.PatchSize), Attr("strides", _cfg.PatchSize, _cfg.PatchSize));
            var flat = _g.Node("Reshape", new[] { conv, _g.Int64s(0, d, -1) }, "flat");
            var patches = _g.Node("Transpose", new[] { flat }, "tokens", Attr("perm", 0L, 2, 1));     // (B, N, D)

            // [CLS] + patches + position table: (B, 1 + N, D).
            _g.Scope = "";
            var batch = _g.Node("Shape", new[] { image }, "batch_size", Attr("start", 0L), Attr("end", 1L)); // (1)
            var clsShape = _g.Node("Concat", new[] { batch, _g.Int64s(1, d) }, "cls_shape", Attr("axis", 0L));
            var cls = _g.Node("Expand", new[] { Param("cls_token"), clsShape }, "cls");                     // (B, 1, D)
            var tokens = _g.Node("Concat", new[] { cls, patches }, "tokens", Attr("axis", 1L));
            var withPos = _g.Node("Add", new[] { tokens, Param("pos_embed") }, "tokens_pos");
            // The residual stream as rows of (B * (1 + N), D): every Linear is then a Gemm.
            var x = _g.Node("Reshape", new[] { withPos, _g.Int64s(-1, d) }, "rows");

            string? attention = null;
            for (int i = 0; i < _cfg.Depth; i++)
            {
                _g.Scope = $"blocks.{i}";
                bool last = i == _cfg.Depth - 1;
                x = Block($"blocks.{i}", x, t, last && _options.IncludeAttention ? a => attention = a : null);
            }

            // Final norm of the CLS token only (LayerNorm is per token): (B, D).
            _g.Scope = "";
            var seq = _g.Node("Reshape", new[] { x, _g.Int64s(-1, t, d) }, "hidden");                    // (B, 1 + N, D)
            var clsOut = _g.Node("Gather", new[] { seq, _g.ScalarInt64(0) }, "cls_hidden", Attr("axis", 1L));
            _g.Scope = "norm";
            var feature = LayerNorm("norm", clsOut);
            _g.Scope = "";
            _g.Output(feature, FeatureOutput, DataType.Float, _batch, d);
            if (attention is not null)
                _g.Output(attention, AttentionOutput, DataType.Float, _batch, (long)_cfg.NumHeads, t);
            if (head is not null)
            {
                _g.Scope = "head";
                var logits = Head(head, feature);
                _g.Scope = "";
                _g.Output(logits, LogitsOutput, DataType.Float, _batch, head.NumClasses);
            }
            return _g.Graph;
        }

        /// <summary>Pre-norm block on (B * T, D) rows: x + Attn(LN(x)); x + MLP(LN(x)).</summary>
        string Block(string p, string x, long t, Action<string>? attentionSink)
        {
            var n1 = LayerNorm(p + ".norm1", x);
            var a = Attention(p + ".attn", n1, t, attentionSink);
            var h = _g.Node("Add", new[] { x, a }, "resid1");
            var n2 = LayerNorm(p + ".norm2", h);
            var fc1 = Linear(p + ".mlp.fc1", n2, "fc1");
            var act = Gelu(fc1);
            var fc2 = Linear(p + ".mlp.fc2", act, "fc2");
            return _g.Node("Add", new[] { h, fc2 }, "resid2");
        }

        string Attention(string p, string x, long t, Action<string>? attentionSink)
        {
            long d = _cfg.EmbedDim, heads = _cfg.NumHeads, hd = _cfg.HeadDim;
            var qkv = Linear(p + ".qkv", x, "qkv");                                                       // (B*T, 3D)
            var split = _g.Node("Reshape", new[] { qkv, _g.Int64s(-1, t, 3, heads, hd) }, "qkv_split");   // (B, T, 3, h, hd)
            var perm = _g.Node("Transpose", new[] { split }, "qkv_heads", Attr("perm", 2L, 0, 3, 1, 4));  // (3, B, h, T, hd)
            var q = _g.Node("Gather", new[] { perm, _g.ScalarInt64(0) }, "q", Attr("axis", 0L));           // (B, h, T, hd)
            var k = _g.Node("Gather", new[] { perm, _g.ScalarInt64(1) }, "k", Attr("axis", 0L));
            var v = _g.Node("Gather", new[] { perm, _g.ScalarInt64(2) }, "v", Attr("axis", 0L));
            var kt = _g.Node("Transpose", new[] { k }, "k_t", Attr("perm", 0L, 1, 3, 2));                 // (B, h, hd, T)
            var logits = _g.Node("MatMul", new[] { q, kt }, "logits");                                    // (B, h, T, T)
            var scaled = _g.Node("Mul", new[] { logits, _g.ScalarFloat((float)Math.Pow(hd, -0.5)) }, "logits_scaled");
            var attn = _g.Node("Softmax", new[] { scaled }, "attn", Attr("axis", -1L));
            attentionSink?.Invoke(_g.Node("Gather", new[] { attn, _g.ScalarInt64(0) }, "cls_attn", Attr("axis", 2L))); // (B, h, T)
            var ctx = _g.Node("MatMul", new[] { attn, v }, "context");                                    // (B, h, T, hd)
            var merged = _g.Node("Transpose", new[] { ctx }, "context_t", Attr("perm", 0L, 2, 1, 3));     // (B, T, h, hd)
            var rows = _g.Node("Reshape", new[] { merged, _g.Int64s(-1, d) }, "context_rows");            // (B*T, D)
            return Linear(p + ".proj", rows, "proj");
        }

        string LayerNorm(string p, string x) =>
            _g.Node("LayerNormalization", new[] { x, Param(p + ".weight"), Param(p + ".bias") }, "ln",
                Attr("axis", -1L), Attr("epsilon", (float)_cfg.LayerNormEps));

        /// <summary>Exact GELU, 0.5 x (1 + erf(x / sqrt 2)) (ONNX Runtime fuses this pattern into one Gelu kernel).</summary>
        string Gelu(string x)
        {
            var scaled = _g.Node("Div", new[] { x, _g.ScalarFloat(MathF.Sqrt(2f)) }, "gelu_div");
            var erf = _g.Node("Erf", new[] { scaled }, "gelu_erf");
            var plus = _g.Node("Add", new[] { erf, _g.ScalarFloat(1f) }, "gelu_add");
            var prod = _g.Node("Mul", new[] { x, plus }, "gelu_mul");
            return _g.Node("Mul", new[] { prod, _g.ScalarFloat(0.5f) }, "gelu");
        }

        /// <summary>nn.Linear on rows: y = x W^T + b.</summary>
        string Linear(string key, string x, string hint)
        {
            var w = _state[key + ".weight"];
            _state.TryGetValue(key + ".bias", out var b);
            if (_options.Quantization == OnnxQuantization.DynamicInt8) return DynamicInt8Linear(key, x, w, b, hint);
            var inputs = new List<string> { x, Param(key + ".weight") };
            if (b is not null) inputs.Add(Param(key + ".bias"));
            return _g.Node("Gemm", inputs, hint, Attr("transB", 1L));
        }

        /// <summary>
        /// The same Linear with int8 weights (symmetric, per output channel, stored transposed as
        /// (in, out)) and uint8 activations quantized per tensor at run time:
        /// y = (MatMulInteger(q(x), Wq) as float) * (scale_x * scale_w) + b.
        /// </summary>
        string DynamicInt8Linear(string key, string x, Tensor w, Tensor? b, string hint)
        {
            string qw, scale, zero;
            using (var scope = NewDisposeScope())
            {
                var wf = w.detach().cpu().to(ScalarType.Float32);
                var s = wf.abs().amax(new long[] { 1 }).DividedBy(127.0).ClampMin(1e-12);                    // (out)
                var q = wf.div(s.unsqueeze(1)).round().ClampTo(-127, 127).t();                            // (in, out)
                qw = _g.Int8Initializer(key + ".weight_quantized", q);
                scale = _g.Initializer(key + ".weight_scale", s);
                zero = _g.Int8Initializer(key + ".weight_zero_point", zeros(s.shape[0], dtype: ScalarType.Int8));
            }
            var dq = _g.NodeMulti("DynamicQuantizeLinear", new[] { x }, new[] { hint + "_xq", hint + "_xscale", hint + "_xzero" });
            var acc = _g.Node("MatMulInteger", new[] { dq[0], qw, dq[2], zero }, hint + "_i32");
            var accF = _g.Node("Cast", new[] { acc }, hint + "_f32", Attr("to", (long)DataType.Float));
            var s2 = _g.Node("Mul", new[] { dq[1], scale }, hint + "_scale");
            var y = _g.Node("Mul", new[] { accF, s2 }, hint + "_deq");
            return b is null ? y : _g.Node("Add", new[] { y, Param(key + ".bias") }, hint);
        }

        /// <summary>Eval-mode BatchNorm (if any), then the Linear: (B, D) -> (B, classes).</summary>
        string Head(ClassifierHead head, string x)
        {
            string Init(string role, Tensor tensor)
            {
                string key = head.Keys[role];
                return _g.Initializer(key.StartsWith("head.", StringComparison.Ordinal) ? key : "head." + key, tensor);
            }
            if (head.RunningMean is not null && head.RunningVar is not null)
            {
                var centered = _g.Node("Sub", new[] { x, Init("running_mean", head.RunningMean) }, "bn_centered");
                var varEps = _g.Node("Add", new[] { Init("running_var", head.RunningVar), _g.ScalarFloat((float)head.BnEps) }, "bn_var_eps");
                var std = _g.Node("Sqrt", new[] { varEps }, "bn_std");
                x = _g.Node("Div", new[] { centered, std }, "bn");
                if (head.BnWeight is not null) x = _g.Node("Mul", new[] { x, Init("bn_weight", head.BnWeight) }, "bn_scaled");
                if (head.BnBias is not null) x = _g.Node("Add", new[] { x, Init("bn_bias", head.BnBias) }, "bn_shifted");
            }
            var inputs = new List<string> { x, Init("weight", head.Weight) };
            if (head.Bias is not null) inputs.Add(Init("bias", head.Bias));
            return _g.Node("Gemm", inputs, "logits", Attr("transB", 1L));
        }
    }
}
