using Google.Protobuf;
using Onnx;
using static TorchSharp.torch;
using DataType = Onnx.TensorProto.Types.DataType;

namespace AttnDistill.Export;

/// <summary>
/// Builds an ONNX graph node by node on the protobuf classes of onnx.proto: unique value and node
/// names, initializers copied from tensors under their state-dict names, small int64/float
/// constants (shared when equal), and typed graph inputs and outputs.
/// </summary>
public sealed class OnnxGraphBuilder
{
    readonly GraphProto _graph;
    readonly HashSet<string> _names = new(StringComparer.Ordinal);
    readonly Dictionary<string, string> _constants = new(StringComparer.Ordinal);
    int _nodes;

    public OnnxGraphBuilder(string graphName)
    {
        if (!BitConverter.IsLittleEndian)
            throw new PlatformNotSupportedException("ONNX raw tensor data is little-endian; this exporter copies memory as is.");
        _graph = new GraphProto { Name = graphName };
    }

    public GraphProto Graph => _graph;

    /// <summary>Scope prefixed to node names ("blocks.3"), so a viewer groups a block's nodes.</summary>
    public string Scope { get; set; } = "";

    /// <summary>A float32 initializer holding a copy of <paramref name="tensor"/> under <paramref name="name"/> (taken as is).</summary>
    public string Initializer(string name, Tensor tensor)
    {
        using var scope = NewDisposeScope();
        var c = tensor.detach().cpu().to(ScalarType.Float32).contiguous();
        return AddInitializer(name, DataType.Float, c.shape, ByteString.CopyFrom(c.bytes));
    }

    /// <summary>An int8 initializer (quantized weights).</summary>
    public string Int8Initializer(string name, Tensor tensor)
    {
        using var scope = NewDisposeScope();
        var c = tensor.detach().cpu().to(ScalarType.Int8).contiguous();
        return AddInitializer(name, DataType.Int8, c.shape, ByteString.CopyFrom(c.bytes));
    }

    /// <summary>A 1-D int64 constant (shapes, axes), shared by every node that needs the same values.</summary>
    public string Int64s(params long[] values) => Constant(DataType.Int64, new long[] { values.Length },
        "i64[" + string.Join(",", values) + "]", MemoryMarshalBytes(values));

    /// <summary>A 0-D int64 constant (a Gather index that drops the axis).</summary>
    public string ScalarInt64(long value) => Constant(DataType.Int64, Array.Empty<long>(), $"i64({value})", MemoryMarshalBytes(new[] { value }));

    /// <summary>A 0-D float constant.</summary>
    public string ScalarFloat(float value) =>
        Constant(DataType.Float, Array.Empty<long>(), $"f32({value:R})", MemoryMarshalBytes(new[] { value }));

    string Constant(DataType type, long[] dims, string key, ByteString data)
    {
        if (_constants.TryGetValue(key, out var name)) return name;
        name = AddInitializer(FreeName("const_" + key), type, dims, data);
        _constants[key] = name;
        return name;
    }

    static ByteString MemoryMarshalBytes<T>(T[] values) where T : unmanaged =>
        ByteString.CopyFrom(System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan()));

    string AddInitializer(string name, DataType type, IEnumerable<long> dims, ByteString data)
    {
        if (!_names.Add(name)) throw new InvalidOperationException($"ONNX value name '{name}' used twice.");
        var t = new TensorProto { Name = name, DataType = (int)type, RawData = data };
        t.Dims.AddRange(dims);
        _graph.Initializer.Add(t);
        return name;
    }

    /// <summary>Adds one node; returns the name of its (first) output, derived from <paramref name="outputHint"/>.</summary>
    public string Node(string opType, IEnumerable<string> inputs, string outputHint, params AttributeProto[] attributes)
        => NodeMulti(opType, inputs, new[] { outputHint }, attributes)[0];

    /// <summary>Adds one node with several outputs (e.g. DynamicQuantizeLinear).</summary>
    public string[] NodeMulti(string opType, IEnumerable<string> inputs, IReadOnlyList<string> outputHints, params AttributeProto[] attributes)
    {
        string prefix = Scope.Length == 0 ? "" : Scope + "/";
        var node = new NodeProto { OpType = opType, Name = $"{prefix}{opType}_{_nodes++}" };
        node.Input.AddRange(inputs);
        var outputs = outputHints.Select(h => UniqueName(prefix.Replace('/', '.') + h)).ToArray();
        node.Output.AddRange(outputs);
        node.Attribute.AddRange(attributes);
        _graph.Node.Add(node);
        return outputs;
    }

    /// <summary>The hint, or the hint with the first free "_k" suffix (not yet claimed).</summary>
    string FreeName(string hint)
    {
        string name = hint;
        for (int i = 1; _names.Contains(name); i++) name = $"{hint}_{i}";
        return name;
    }

    string UniqueName(string hint)
    {
        string name = FreeName(hint);
        _names.Add(name);
        return name;
    }

    /// <summary>Declares a graph input; a dimension is a size (long) or a symbolic name (string, e.g. "batch").</summary>
    public string Input(string name, DataType type, params object[] dims)
    {
        if (!_names.Add(name)) throw new InvalidOperationException($"ONNX value name '{name}' used twice.");
        _graph.Input.Add(ValueInfo(name, type, dims));
        return name;
    }

    /// <summary>Declares <paramref name="value"/> (a node output) as the graph output <paramref name="name"/>, via Identity when the names differ.</summary>
    public void Output(string value, string name, DataType type, params object[] dims)
    {
        if (value != name)
        {
            if (!_names.Add(name)) throw new InvalidOperationException($"ONNX value name '{name}' used twice.");
            var node = new NodeProto { OpType = "Identity", Name = $"output_{name}" };
            node.Input.Add(value);
            node.Output.Add(name);
            _graph.Node.Add(node);
        }
        _graph.Output.Add(ValueInfo(name, type, dims));
    }

    static ValueInfoProto ValueInfo(string name, DataType type, object[] dims)
    {
        var shape = new TensorShapeProto();
        foreach (var d in dims)
        {
            shape.Dim.Add(d switch
            {
                string s => new TensorShapeProto.Types.Dimension { DimParam = s },
                long v => new TensorShapeProto.Types.Dimension { DimValue = v },
                int v => new TensorShapeProto.Types.Dimension { DimValue = v },
                _ => throw new ArgumentException($"a dimension is a size or a name, not {d?.GetType().Name ?? "null"}."),
            });
        }
        return new ValueInfoProto
        {
            Name = name,
            Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)type, Shape = shape } },
        };
    }

    public static AttributeProto Attr(string name, long value) =>
        new() { Name = name, Type = AttributeProto.Types.AttributeType.Int, I = value };

    public static AttributeProto Attr(string name, float value) =>
        new() { Name = name, Type = AttributeProto.Types.AttributeType.Float, F = value };

    public static AttributeProto Attr(string name, params long[] values)
    {
        var a = new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Ints };
        a.Ints.AddRange(values);
        return a;
    }
}
