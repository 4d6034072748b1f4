using System.Collections;
using TorchSharp.PyBridge;
using static TorchSharp.torch;

namespace AttnDistill.Tests.TestSupport;

/// <summary>
/// A committed torch.save'd dict of tensors under fixtures/, read once per test run: the tensors
/// must outlive the DisposeScope of whichever test loads them first, so they are detached from it
/// and handed out as fresh copies.
/// </summary>
public sealed class FixtureTable(string relativePath)
{
    private readonly Lazy<Hashtable> _table = new(() =>
    {
        var table = PyTorchUnpickler.UnpickleStateDict(Path.Combine(AppContext.BaseDirectory, "fixtures", relativePath));
        foreach (var value in table.Values)
            if (value is Tensor t) t.DetachFromDisposeScope();
        return table;
    });

    public Hashtable Raw => _table.Value;

    /// <summary>A fresh copy (callers may dispose it or make it a leaf).</summary>
    public Tensor Get(string name)
    {
        var t = _table.Value[name] as Tensor ?? throw new KeyNotFoundException($"fixture tensor '{name}' is missing from {relativePath}");
        return t.detach().clone();
    }
}
