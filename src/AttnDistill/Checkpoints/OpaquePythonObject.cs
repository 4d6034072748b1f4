namespace AttnDistill.Checkpoints;

/// <summary>
/// Stands in for a plain-data Python object a checkpoint may carry beside its tensors (numpy
/// dtypes, scalars and arrays, e.g. a best accuracy stored as numpy.float64; torch.device; paths).
/// Nothing is executed: the constructor arguments and the state are only kept.
/// </summary>
public sealed class OpaquePythonObject
{
    public string TypeName { get; }
    public object?[] Args { get; }
    public object? State { get; internal set; }

    public OpaquePythonObject(string typeName, object?[] args)
    {
        TypeName = typeName;
        Args = args;
    }

    public override string ToString() => $"<{TypeName}>";
}
