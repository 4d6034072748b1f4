using System.Collections;
using Razorvine.Pickle;

namespace AttnDistill.Checkpoints;

/// <summary>
/// Stands in for Python objects a checkpoint may carry beside its tensors that the default
/// unpickler cannot build (numpy dtypes, scalars and arrays: e.g. a best accuracy stored as
/// numpy.float64). Nothing is executed: the constructor arguments and state are only kept.
/// </summary>
public sealed class OpaquePythonObject
{
    public string TypeName { get; }
    public object[] Args { get; }
    public object? State { get; private set; }

    public OpaquePythonObject(string typeName, object[] args)
    {
        TypeName = typeName;
        Args = args;
    }

    // The unpickler's BUILD opcode looks these up by reflection with the state's runtime type.
    public void __setstate__(object[] state) => State = state;
    public void __setstate__(Hashtable state) => State = state;

    public override string ToString() => $"<{TypeName}>";

    sealed class Constructor(string typeName) : IObjectConstructor
    {
        public object construct(object[] args) => new OpaquePythonObject(typeName, args);
    }

    static int registered;

    /// <summary>Registers the numpy constructors on Razorvine's (process-wide) unpickler, once.</summary>
    public static void RegisterNumpy()
    {
        if (Interlocked.Exchange(ref registered, 1) == 1) return;
        foreach (string core in new[] { "numpy.core.multiarray", "numpy._core.multiarray" })
        {
            Unpickler.registerConstructor(core, "scalar", new Constructor("numpy.scalar"));
            Unpickler.registerConstructor(core, "_reconstruct", new Constructor("numpy.ndarray"));
        }
        Unpickler.registerConstructor("numpy", "dtype", new Constructor("numpy.dtype"));
        Unpickler.registerConstructor("numpy", "ndarray", new Constructor("numpy.ndarray"));
    }
}
