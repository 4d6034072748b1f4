using System.Reflection;
using System.Reflection.Emit;
using TorchSharp;

namespace AttnDistill.Tests.Reliability;

/// <summary>
/// Reads the IL of an assembly and names every place where a <see cref="Scalar"/> is made and
/// handed on with nothing keeping it reachable. TorchSharp 0.107 passes only a Scalar's native
/// handle to libtorch, and a Scalar has a finalizer; once its handle is read, a temporary one (a
/// C# number converted implicitly, or a <c>ToScalar()</c> passed straight on) is garbage, so a GC
/// on another thread (a data worker) can free the native scalar while libtorch still reads it.
/// A Scalar is kept when it is stored in a field or in a local that the method disposes (a
/// <c>using</c>) or hands to <see cref="GC.KeepAlive"/>; a method that returns it passes the duty
/// to its caller. TorchSharp's own methods that make such temporaries (e.g. <c>add(Tensor)</c>,
/// which calls <c>add(target, 1)</c>) are found the same way, transitively over direct calls, so
/// calling one of them counts as making a temporary. A virtual call is judged by the method it
/// names (the receiver's static type), so a call through a base type (an optimizer's step via
/// OptimizerHelper) is not seen: the trainer's optimizers are checked by their own test.
/// </summary>
internal static class ScalarLifetimeScanner
{
    private static readonly Dictionary<short, OpCode> OpCodesByValue = typeof(OpCodes)
        .GetFields(BindingFlags.Public | BindingFlags.Static)
        .Select(f => (OpCode)f.GetValue(null)!)
        .ToDictionary(o => o.Value);

    private readonly record struct Instruction(int Offset, OpCode Op, long Operand);

    private static readonly Lazy<HashSet<MethodBase>> TorchSharpTemporaryMakers = new(FindTorchSharpTemporaryMakers);

    /// <summary>"Type.Method: why" for every unkept Scalar made in <paramref name="assembly"/>, directly or through TorchSharp.</summary>
    public static IReadOnlyList<string> Violations(Assembly assembly)
    {
        var makers = TorchSharpTemporaryMakers.Value;
        var found = new List<string>();
        foreach (var method in MethodsOf(assembly))
        {
            var body = Decode(method);
            if (body is null) continue;
            foreach (string why in UnkeptScalars(method, body))
                found.Add($"{Name(method)}: {why}");
            foreach (var callee in DirectCallees(method, body).Distinct())
            {
                if (makers.Contains(callee))
                    found.Add($"{Name(method)}: calls {Name(callee)}, which passes a temporary Scalar to libtorch");
                // TorchSharp declares Scalar -> Tensor implicit but throws in it, so a kept Scalar
                // passed where a Tensor goes (torch.pow(Scalar, Tensor)) compiles and fails at run time.
                if (IsScalarToTensorConversion(callee))
                    found.Add($"{Name(method)}: converts a Scalar to a Tensor, which TorchSharp throws on (pass a 0-d tensor)");
            }
        }
        return found.Distinct().OrderBy(s => s, StringComparer.Ordinal).ToList();
    }

    private static bool IsScalarToTensorConversion(MethodBase m) =>
        m is MethodInfo { Name: "op_Implicit" } info && info.ReturnType == typeof(torch.Tensor)
        && info.GetParameters() is [{ ParameterType: var from }] && from == typeof(Scalar);

    /// <summary>The TorchSharp methods that make an unkept Scalar themselves or call one that does (direct calls only).</summary>
    public static IReadOnlyCollection<MethodBase> TorchSharpMakers => TorchSharpTemporaryMakers.Value;

    private static HashSet<MethodBase> FindTorchSharpTemporaryMakers()
    {
        var callers = new Dictionary<MethodBase, List<MethodBase>>();
        var makers = new HashSet<MethodBase>();
        foreach (var method in MethodsOf(typeof(Scalar).Assembly))
        {
            var body = Decode(method);
            if (body is null) continue;
            if (UnkeptScalars(method, body).Any()) makers.Add(method);
            foreach (var callee in DirectCallees(method, body))
            {
                if (callee.DeclaringType?.Assembly != typeof(Scalar).Assembly) continue;
                if (!callers.TryGetValue(callee, out var list)) callers[callee] = list = new List<MethodBase>();
                list.Add(method);
            }
        }
        var pending = new Queue<MethodBase>(makers);
        while (pending.TryDequeue(out var m))
            if (callers.TryGetValue(m, out var list))
                foreach (var caller in list)
                    if (makers.Add(caller)) pending.Enqueue(caller);
        return makers;
    }

    private static IEnumerable<string> UnkeptScalars(MethodBase method, Instruction[] body)
    {
        for (int i = 0; i < body.Length; i++)
        {
            if (!MakesScalar(method, body[i], out var maker)) continue;
            var next = i + 1 < body.Length ? body[i + 1] : default;
            if (next.Op == OpCodes.Ret || next.Op == OpCodes.Stfld || next.Op == OpCodes.Stsfld) continue;
            if (LocalStored(next) is int local && KeptLocal(body, local)) continue;
            yield return $"{(maker is null ? "new Scalar" : Name(maker))} at IL_{body[i].Offset:x4} is not kept alive";
        }
    }

    private static bool MakesScalar(MethodBase context, Instruction ins, out MethodBase? maker)
    {
        maker = null;
        if (ins.Op != OpCodes.Call && ins.Op != OpCodes.Callvirt && ins.Op != OpCodes.Newobj) return false;
        maker = Resolve(context, (int)ins.Operand);
        return maker switch
        {
            MethodInfo m => m.ReturnType == typeof(Scalar),
            ConstructorInfo c => c.DeclaringType == typeof(Scalar),
            _ => false,
        };
    }

    /// <summary>The Scalar in <paramref name="local"/> stays reachable to the end: the method disposes it or calls GC.KeepAlive on it.</summary>
    private static bool KeptLocal(Instruction[] body, int local)
    {
        for (int i = 0; i + 1 < body.Length; i++)
        {
            if (LocalLoaded(body[i]) != local) continue;
            var next = body[i + 1];
            if (next.Op != OpCodes.Call && next.Op != OpCodes.Callvirt) continue;
            if (Resolve(null, (int)next.Operand) is MethodInfo m
                && ((m.Name == nameof(IDisposable.Dispose) && m.GetParameters().Length == 0)
                    || (m.DeclaringType == typeof(GC) && m.Name == nameof(GC.KeepAlive))))
                return true;
        }
        return false;
    }

    private static int? LocalStored(Instruction ins) =>
        ins.Op == OpCodes.Stloc_0 ? 0 : ins.Op == OpCodes.Stloc_1 ? 1 : ins.Op == OpCodes.Stloc_2 ? 2 : ins.Op == OpCodes.Stloc_3 ? 3
        : ins.Op == OpCodes.Stloc_S || ins.Op == OpCodes.Stloc ? (int)ins.Operand : null;

    private static int? LocalLoaded(Instruction ins) =>
        ins.Op == OpCodes.Ldloc_0 ? 0 : ins.Op == OpCodes.Ldloc_1 ? 1 : ins.Op == OpCodes.Ldloc_2 ? 2 : ins.Op == OpCodes.Ldloc_3 ? 3
        : ins.Op == OpCodes.Ldloc_S || ins.Op == OpCodes.Ldloc || ins.Op == OpCodes.Ldloca_S || ins.Op == OpCodes.Ldloca ? (int)ins.Operand : null;

    private static IEnumerable<MethodBase> DirectCallees(MethodBase method, Instruction[] body)
    {
        foreach (var ins in body)
        {
            // A callvirt is followed to the method it names (the receiver's static type), a
            // ldftn to the lambda it makes a delegate of (optimizer steps pass their body so).
            if (ins.Op != OpCodes.Call && ins.Op != OpCodes.Newobj && ins.Op != OpCodes.Callvirt && ins.Op != OpCodes.Ldftn) continue;
            if (Resolve(method, (int)ins.Operand) is not { } callee) continue;
            yield return callee;
        }
    }

    // The module of the method being read is what resolves its tokens; the generic context is its own.
    [ThreadStatic] private static Module? _module;
    [ThreadStatic] private static Type[]? _typeArgs, _methodArgs;

    private static MethodBase? Resolve(MethodBase? context, int token)
    {
        try { return _module!.ResolveMethod(token, _typeArgs, _methodArgs); }
        catch (Exception e) when (e is ArgumentException or BadImageFormatException or TypeLoadException or FileNotFoundException or MissingMethodException) { return null; }
    }

    private static Instruction[]? Decode(MethodBase method)
    {
        byte[]? il;
        try { il = method.GetMethodBody()?.GetILAsByteArray(); }
        catch (Exception e) when (e is InvalidOperationException or BadImageFormatException or TypeLoadException) { return null; }
        if (il is null) return null;
        _module = method.Module;
        _typeArgs = method.DeclaringType is { IsGenericType: true } t ? t.GetGenericArguments() : null;
        _methodArgs = method.IsGenericMethod ? method.GetGenericArguments() : null;
        var list = new List<Instruction>();
        for (int pc = 0; pc < il.Length;)
        {
            int start = pc;
            short value = il[pc] == 0xFE ? (short)(0xFE00 | il[pc + 1]) : il[pc];
            pc += il[pc] == 0xFE ? 2 : 1;
            var op = OpCodesByValue[value];
            long operand = 0;
            switch (op.OperandType)
            {
                case OperandType.InlineNone: break;
                case OperandType.ShortInlineBrTarget: case OperandType.ShortInlineI: case OperandType.ShortInlineVar:
                    operand = il[pc]; pc += 1; break;
                case OperandType.InlineVar: operand = BitConverter.ToUInt16(il, pc); pc += 2; break;
                case OperandType.InlineI8: case OperandType.InlineR: operand = BitConverter.ToInt64(il, pc); pc += 8; break;
                case OperandType.InlineSwitch: pc += 4 + 4 * BitConverter.ToInt32(il, pc); break;
                default: operand = BitConverter.ToInt32(il, pc); pc += 4; break;
            }
            list.Add(new Instruction(start, op, operand));
        }
        return list.ToArray();
    }

    private static IEnumerable<MethodBase> MethodsOf(Assembly assembly)
    {
        const BindingFlags all = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly;
        Type[] types;
        try { types = assembly.GetTypes(); }
        catch (ReflectionTypeLoadException e) { types = e.Types.Where(t => t is not null).ToArray()!; }
        foreach (var type in types)
        {
            foreach (var m in type.GetMethods(all)) yield return m;
            foreach (var c in type.GetConstructors(all)) yield return c;
        }
    }

    private static string Name(MethodBase m) =>
        $"{m.DeclaringType?.FullName?.Replace('+', '.')}.{m.Name}({string.Join(", ", m.GetParameters().Select(p => p.ParameterType.Name))})";
}
