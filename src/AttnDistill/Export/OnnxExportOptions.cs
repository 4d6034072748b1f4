namespace AttnDistill.Export;

/// <summary>How the Linear layers of the exported graph compute.</summary>
public enum OnnxQuantization
{
    /// <summary>float32 weights, Gemm (exactly the TorchSharp model's math).</summary>
    None,
    /// <summary>
    /// Dynamic int8: weights int8, symmetric per output channel; activations quantized to uint8 per
    /// tensor at run time (DynamicQuantizeLinear + MatMulInteger), as ONNX Runtime's Python
    /// quantize_dynamic does. Attention products, LayerNorm, GELU and the head stay float32.
    /// </summary>
    DynamicInt8,
}

/// <summary>What the exported ONNX graph contains besides the normalized CLS feature.</summary>
public sealed record OnnxExportOptions
{
    /// <summary>Adds the "attention" output: the last block's CLS attention row, (batch, heads, 1 + N).</summary>
    public bool IncludeAttention { get; init; }

    public OnnxQuantization Quantization { get; init; } = OnnxQuantization.None;

    /// <summary>
    /// Input size of the graph; null = the model's configured size. Another size stores the position
    /// table the model itself uses for that input (<see cref="Models.VisionTransformer.PositionTableFor"/>:
    /// DINO's interpolate_pos_encoding, or the sin-cos table recomputed), so the file equals the model
    /// run on images of that size.
    /// </summary>
    public int? ImageSize { get; init; }

    /// <summary>Symbolic name of the batch dimension of every input and output.</summary>
    public string BatchDimension { get; init; } = "batch";
}
