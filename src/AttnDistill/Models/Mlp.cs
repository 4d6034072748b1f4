using TorchSharp.Modules;
using static TorchSharp.torch;

namespace AttnDistill.Models;

/// <summary>Transformer MLP: fc1 -> GELU (exact) -> dropout -> fc2 -> dropout.</summary>
public sealed class Mlp : nn.Module<Tensor, Tensor>
{
#pragma warning disable IDE1006
    private readonly Linear fc1;
    private readonly GELU act;
    private readonly Linear fc2;
    private readonly Dropout drop;
#pragma warning restore IDE1006

    public Mlp(int inFeatures, int hiddenFeatures, double dropRate) : base(nameof(Mlp))
    {
        fc1 = nn.Linear(inFeatures, hiddenFeatures);
        act = nn.GELU();
        fc2 = nn.Linear(hiddenFeatures, inFeatures);
        drop = nn.Dropout(dropRate);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var h = Autocast.Linear(fc1, x);
        using var a = act.forward(h);
        using var d = drop.forward(a);
        using var o = Autocast.Linear(fc2, d);
        return drop.forward(o);
    }
}
