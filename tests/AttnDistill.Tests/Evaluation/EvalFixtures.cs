using System.Collections;
using TorchSharp.PyBridge;
using static TorchSharp.torch;

namespace AttnDistill.Tests.Evaluation;

/// <summary>Tensors written by the scripts in tests/fixtures/eval/, each file read once.</summary>
public static class EvalFixtures
{
    static readonly Dictionary<string, Hashtable> Files = new();

    static Hashtable Load(string file)
    {
        lock (Files)
        {
            if (Files.TryGetValue(file, out var table)) return table;
            table = PyTorchUnpickler.UnpickleStateDict(Path.Combine(AppContext.BaseDirectory, "fixtures", "eval", file));
            // The tensors must outlive the DisposeScope of whichever test loads them first.
            foreach (var value in table.Values)
                if (value is Tensor t) t.DetachFromDisposeScope();
            Files[file] = table;
            return table;
        }
    }

    /// <summary>A fresh copy (callers may dispose it).</summary>
    public static Tensor Get(string file, string name) =>
        (Load(file)[name] as Tensor ?? throw new KeyNotFoundException($"{file}: fixture tensor '{name}' is missing")).detach().clone();

    public static bool Has(string file, string name) => Load(file).ContainsKey(name);
}
