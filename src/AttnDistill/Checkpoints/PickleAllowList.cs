using static TorchSharp.torch;

namespace AttnDistill.Checkpoints;

/// <summary>What an allowed Python global stands for when a checkpoint's pickle names it.</summary>
public enum PickleGlobalKind
{
    /// <summary>torch._utils._rebuild_tensor / _rebuild_tensor_v2: a tensor over a storage.</summary>
    RebuildTensor,
    /// <summary>torch._utils._rebuild_tensor_v3: the same with an explicit dtype.</summary>
    RebuildTensorV3,
    /// <summary>torch._utils._rebuild_parameter(_with_state): an nn.Parameter, read as its tensor.</summary>
    RebuildParameter,
    /// <summary>torch._tensor._rebuild_from_type_v2: a tensor (sub)class with attributes, read as its tensor.</summary>
    RebuildFromType,
    /// <summary>torch.Tensor / torch.nn.parameter.Parameter named as a type (only as an argument of <see cref="RebuildFromType"/>).</summary>
    TensorType,
    /// <summary>torch.FloatStorage and co.: the element type of a storage (only inside persistent ids).</summary>
    Storage,
    /// <summary>torch.float32 and co.: a dtype value.</summary>
    TorchDtype,
    /// <summary>collections.OrderedDict: a dict.</summary>
    OrderedDict,
    /// <summary>builtins.set / frozenset: a set.</summary>
    Set,
    /// <summary>builtins.bytearray: bytes.</summary>
    ByteArray,
    /// <summary>_codecs.encode(str, encoding): how protocol 2 stores bytes (numpy scalars use it).</summary>
    CodecsEncode,
    /// <summary>torch.Size: a tuple.</summary>
    TorchSize,
    /// <summary>argparse.Namespace (DINO's and MAE's 'args'): a dict of its attributes.</summary>
    Namespace,
    /// <summary>Data-only classes kept as an <see cref="OpaquePythonObject"/> record (numpy scalars, arrays and dtypes, torch.device, paths).</summary>
    Opaque,
}

/// <summary>An allowed global as the unpickler's stack holds it.</summary>
public sealed record PickleGlobal(string Module, string Name, PickleGlobalKind Kind, ScalarType Dtype = ScalarType.Float32)
{
    public string FullName => Module + "." + Name;
    public override string ToString() => FullName;
}

/// <summary>
/// The only Python globals a checkpoint's pickle may name: what torch.save writes for tensors and
/// state dicts, plus the plain-data classes real DINO/MAE/iBOT checkpoints carry beside them
/// (argparse 'args', numpy scalars, torch.device). Anything else (os.system, builtins.eval, a
/// pickled nn.Module ...) is refused before it is used; none of these is ever called: each kind
/// is rebuilt by our own code.
/// </summary>
public static class PickleAllowList
{
    static readonly Dictionary<string, PickleGlobal> ByName = Build();

    /// <summary>Every allowed "module.name".</summary>
    public static IReadOnlyCollection<string> Names => ByName.Keys;

    /// <summary>The allowed global, or null when the pickle must be refused.</summary>
    public static PickleGlobal? Find(string module, string name) => ByName.GetValueOrDefault(module + "." + name);

    static Dictionary<string, PickleGlobal> Build()
    {
        var list = new List<PickleGlobal>
        {
            new("torch._utils", "_rebuild_tensor", PickleGlobalKind.RebuildTensor),
            new("torch._utils", "_rebuild_tensor_v2", PickleGlobalKind.RebuildTensor),
            new("torch._utils", "_rebuild_tensor_v3", PickleGlobalKind.RebuildTensorV3),
            new("torch._utils", "_rebuild_parameter", PickleGlobalKind.RebuildParameter),
            new("torch._utils", "_rebuild_parameter_with_state", PickleGlobalKind.RebuildParameter),
            new("torch._tensor", "_rebuild_from_type_v2", PickleGlobalKind.RebuildFromType),
            new("torch", "Tensor", PickleGlobalKind.TensorType),
            new("torch._tensor", "Tensor", PickleGlobalKind.TensorType),
            new("torch.nn.parameter", "Parameter", PickleGlobalKind.TensorType),
            new("torch", "Size", PickleGlobalKind.TorchSize),
            new("torch", "device", PickleGlobalKind.Opaque),
            new("collections", "OrderedDict", PickleGlobalKind.OrderedDict),
            new("_codecs", "encode", PickleGlobalKind.CodecsEncode),
            new("argparse", "Namespace", PickleGlobalKind.Namespace),
            new("numpy", "dtype", PickleGlobalKind.Opaque),
            new("numpy", "ndarray", PickleGlobalKind.Opaque),
        };
        foreach (string builtins in new[] { "builtins", "__builtin__" })
        {
            list.Add(new(builtins, "set", PickleGlobalKind.Set));
            list.Add(new(builtins, "frozenset", PickleGlobalKind.Set));
            list.Add(new(builtins, "bytearray", PickleGlobalKind.ByteArray));
        }
        foreach (string core in new[] { "numpy.core.multiarray", "numpy._core.multiarray" })
        {
            list.Add(new(core, "scalar", PickleGlobalKind.Opaque));
            list.Add(new(core, "_reconstruct", PickleGlobalKind.Opaque));
        }
        foreach (string p in new[] { "PosixPath", "WindowsPath", "PurePosixPath", "PureWindowsPath" })
            list.Add(new("pathlib", p, PickleGlobalKind.Opaque));
        foreach (var (storage, dtype) in new (string, ScalarType)[]
        {
            ("DoubleStorage", ScalarType.Float64), ("FloatStorage", ScalarType.Float32), ("HalfStorage", ScalarType.Float16),
            ("BFloat16Storage", ScalarType.BFloat16), ("LongStorage", ScalarType.Int64), ("IntStorage", ScalarType.Int32),
            ("ShortStorage", ScalarType.Int16), ("CharStorage", ScalarType.Int8), ("ByteStorage", ScalarType.Byte),
            ("BoolStorage", ScalarType.Bool), ("ComplexDoubleStorage", ScalarType.ComplexFloat64),
            ("ComplexFloatStorage", ScalarType.ComplexFloat32), ("UntypedStorage", ScalarType.Byte),
        })
        {
            list.Add(new("torch", storage, PickleGlobalKind.Storage, dtype));
        }
        foreach (var (name, dtype) in new (string, ScalarType)[]
        {
            ("float64", ScalarType.Float64), ("double", ScalarType.Float64), ("float32", ScalarType.Float32), ("float", ScalarType.Float32),
            ("float16", ScalarType.Float16), ("half", ScalarType.Float16), ("bfloat16", ScalarType.BFloat16),
            ("int64", ScalarType.Int64), ("long", ScalarType.Int64), ("int32", ScalarType.Int32), ("int", ScalarType.Int32),
            ("int16", ScalarType.Int16), ("short", ScalarType.Int16), ("int8", ScalarType.Int8), ("uint8", ScalarType.Byte),
            ("bool", ScalarType.Bool), ("complex64", ScalarType.ComplexFloat32), ("complex128", ScalarType.ComplexFloat64),
        })
        {
            list.Add(new("torch", name, PickleGlobalKind.TorchDtype, dtype));
        }
        return list.ToDictionary(g => g.FullName, StringComparer.Ordinal);
    }
}
