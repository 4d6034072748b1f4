using AttnDistill.Checkpoints;
using AttnDistill.Evaluation;
using AttnDistill.Export;
using AttnDistill.Models;
using AttnDistill.Tests.TestSupport;
using Google.Protobuf;
using Onnx;
using Xunit;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace AttnDistill.Tests.Export;

/// <summary>The exported ONNX graph, run by ONNX Runtime, gives TorchSharp's outputs.</summary>
public sealed class OnnxExportTests : IDisposable
{
    const double Tolerance = 1e-4;
    readonly ITestOutputHelper output;
    readonly SingleTorchThread _thread = new();

    public OnnxExportTests(ITestOutputHelper output) => this.output = output;

    public void Dispose() => _thread.Dispose();

    /// <summary>The students of supplement Table 7 (tiny, 6-head tiny, 8-layer tiny, small; patches 8/16/28/32).</summary>
    public static IEnumerable<object[]> StudentPresets() =>
        VitPresets.Names.Where(n => n.StartsWith("vit_tiny", StringComparison.Ordinal) || n.StartsWith("vit_small", StringComparison.Ordinal))
            .Order(StringComparer.Ordinal).Select(n => new object[] { n });

    /// <summary>A small input size the preset's patch divides: grids of 4, 3 or 2 patches a side.</summary>
    static int SmallImage(int patch) => patch * (patch <= 8 ? 4 : patch <= 16 ? 3 : 2);

    /// <summary>A model whose every parameter differs from its init (LayerNorm gains, biases), so a dropped term shows.</summary>
    internal static VisionTransformer Perturbed(VitConfig cfg, int seed)
    {
        manual_seed(seed);
        var model = new VisionTransformer(cfg);
        using (no_grad())
            foreach (var p in model.parameters()) p.add_(randn_like(p).mul_(0.05));
        model.eval();
        return model;
    }

    internal static LinearProbeHead ProbeHead(long features, long classes, int seed)
    {
        manual_seed(seed);
        var head = new LinearProbeHead(features, classes);
        using (no_grad())
        {
            var sd = head.state_dict();
            sd["0.running_mean"].copy_(randn(features).mul_(0.3));
            sd["0.running_var"].copy_(rand(features).add_(0.5));
            sd["1.bias"].copy_(randn(classes).mul_(0.1));
        }
        head.eval();
        return head;
    }

    [Theory]
    [MemberData(nameof(StudentPresets))]
    public void OnnxRuntimeMatchesTorchSharp(string preset)
    {
        var baseCfg = VitPresets.Get(preset);
        var cfg = baseCfg with { ImageSize = SmallImage(baseCfg.PatchSize) };
        using var model = Perturbed(cfg, seed: 1);
        using var probe = ProbeHead(cfg.EmbedDim, 10, seed: 2);
        using var head = ClassifierHeadFile.FromStateDict(probe.state_dict());
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var proto = VitOnnxExporter.Build(model, new OnnxExportOptions { IncludeAttention = true }, head);
        byte[] bytes = proto.ToByteArray();
        double buildMs = clock.Elapsed.TotalMilliseconds;
        using var runner = new OnnxRunner(bytes);
        output.WriteLine($"{preset}: export {buildMs:F0} ms ({bytes.Length >> 20} MiB), ONNX Runtime session {clock.Elapsed.TotalMilliseconds - buildMs:F0} ms");
        Assert.Equal(new[] { "feature", "attention", "logits" }, runner.OutputNames);

        foreach (int batch in new[] { 1, 7 })
        {
            using var scope = NewDisposeScope();
            manual_seed(batch);
            var x = randn(batch, cfg.InChans, cfg.ImageSize, cfg.ImageSize);
            var onnx = runner.Run(x);
            using var _ = no_grad();
            var feature = model.forward(x);
            var attention = model.GetLastSelfAttention(x);
            var logits = probe.forward(feature);
            output.WriteLine($"{preset} {cfg.ImageSize}px batch {batch}: max |diff| feature {MaxDiff(feature, onnx["feature"]):g3}, " +
                             $"attention {MaxDiff(attention, onnx["attention"]):g3}, logits {MaxDiff(logits, onnx["logits"]):g3}");
            TensorAssert.Close(feature, onnx["feature"], $"{preset} batch {batch} feature", 0, Tolerance);
            TensorAssert.Close(attention, onnx["attention"], $"{preset} batch {batch} attention", 0, Tolerance);
            TensorAssert.Close(logits, onnx["logits"], $"{preset} batch {batch} logits", 0, Tolerance);
        }
    }

    [Fact]
    public void GraphIsOpset17WithStateDictInitializersAndDynamicBatch()
    {
        var cfg = new VitConfig { ImageSize = 32, PatchSize = 8, EmbedDim = 48, Depth = 2, NumHeads = 3 };
        using var model = Perturbed(cfg, seed: 3);
        var proto = VitOnnxExporter.Build(model);
        Assert.Equal(8, proto.IrVersion);
        Assert.Equal(17, proto.OpsetImport.Single().Version);
        var stateDict = model.state_dict();
        var inits = proto.Graph.Initializer.Where(i => !i.Name.StartsWith("const_", StringComparison.Ordinal)).ToDictionary(i => i.Name);
        Assert.Equal(stateDict.Keys.Order(StringComparer.Ordinal), inits.Keys.Order(StringComparer.Ordinal));
        foreach (var (key, t) in stateDict)
        {
            Assert.Equal(t.shape, inits[key].Dims.ToArray());
            Assert.Equal(t.contiguous().data<float>().ToArray(), MemoryMarshalFloats(inits[key].RawData));
        }
        Assert.Equal("batch", proto.Graph.Input.Single().Type.TensorType.Shape.Dim[0].DimParam);
        Assert.Equal(new[] { "feature" }, proto.Graph.Output.Select(o => o.Name));
        Assert.Equal("batch", proto.Graph.Output[0].Type.TensorType.Shape.Dim[0].DimParam);
        Assert.Equal(VitConfigJson.Serialize(cfg), proto.MetadataProps.Single(p => p.Key == CheckpointMetadata.VitConfig).Value);
        var ops = proto.Graph.Node.Select(n => n.OpType).ToHashSet();
        Assert.Subset(new HashSet<string> { "Conv", "Reshape", "Transpose", "Concat", "Add", "LayerNormalization", "Gemm", "MatMul", "Softmax", "Erf", "Gather", "Expand", "Shape", "Mul", "Div", "Identity" }, ops);
    }

    static double MaxDiff(Tensor a, Tensor b) => (a - b).abs().max().item<float>();

    static float[] MemoryMarshalFloats(ByteString bytes) =>
        System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(bytes.Span).ToArray();

    [Fact]
    public void Int8QuantizedModelStaysCloseToFloat()
    {
        var cfg = new VitConfig { ImageSize = 32, PatchSize = 8, EmbedDim = 96, Depth = 4, NumHeads = 3 };
        using var model = Perturbed(cfg, seed: 4);
        var fp = VitOnnxExporter.Build(model);
        var q = VitOnnxExporter.Build(model, new OnnxExportOptions { Quantization = OnnxQuantization.DynamicInt8 });
        Assert.Contains(q.Graph.Node, n => n.OpType == "MatMulInteger");
        Assert.DoesNotContain(q.Graph.Node, n => n.OpType == "Gemm");
        Assert.True(q.CalculateSize() < fp.CalculateSize() * 0.4, $"int8 file {q.CalculateSize()} bytes vs float {fp.CalculateSize()}");
        using var runner = new OnnxRunner(q.ToByteArray());
        using var scope = NewDisposeScope();
        manual_seed(5);
        var x = randn(7, 3, 32, 32);
        var got = runner.Run(x)["feature"];
        using var _ = no_grad();
        var want = model.forward(x);
        double cos = nn.functional.cosine_similarity(got, want, 1).min().item<float>();
        Assert.True(cos > 0.99, $"int8 feature cosine similarity to float: min {cos:F4}");
    }
}
