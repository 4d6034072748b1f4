using AttnDistill.Models;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace AttnDistill.Distillation;

/// <summary>
/// The projector P of docs/METHOD.md, section 2.3: LayerNorm(d), then L Linear layers with GELU between,
/// hidden widths alternating 2d, d, 2d ... and ending at the teacher width:
/// L=1: d -> D; L=2: d -> 2d -> D; L=4: d -> 2d -> d -> 2d -> D; L=8 likewise.
/// State-dict names are those of an nn.Sequential: 0 (LayerNorm), 1 (Linear), 2 (GELU), 3 ...
/// </summary>
public sealed class Projector : nn.Module<Tensor, Tensor>
{
#pragma warning disable IDE1006
    private readonly Sequential layers;
#pragma warning restore IDE1006
    private readonly int[] _linearPositions;

    public int Layers { get; }

    public Projector(int studentDim, int teacherDim, int layers, double layerNormEps = 1e-6) : base(nameof(Projector))
    {
        if (layers <= 0) throw new ArgumentException($"a projector needs at least one layer, got {layers}.");
        Layers = layers;
        var modules = new List<(string, nn.Module<Tensor, Tensor>)> { ("0", nn.LayerNorm(studentDim, eps: layerNormEps)) };
        var positions = new List<int>();
        int inDim = studentDim;
        for (int i = 1; i <= layers; i++)
        {
            int outDim = i == layers ? teacherDim : (i % 2 == 1 ? 2 * studentDim : studentDim);
            positions.Add(modules.Count);
            modules.Add((modules.Count.ToString(), nn.Linear(inDim, outDim)));
            if (i < layers) modules.Add((modules.Count.ToString(), nn.GELU()));
            inDim = outDim;
        }
        _linearPositions = positions.ToArray();
        this.layers = nn.Sequential(modules);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => ForwardUpTo(x, Layers);

    /// <summary>Output of the k-th Linear layer (1-based), before the GELU that follows it; k = Layers is the whole projector.</summary>
    public Tensor ForwardUpTo(Tensor x, int k)
    {
        if (k < 1 || k > Layers) throw new ArgumentOutOfRangeException(nameof(k), $"projector layer {k} not in 1..{Layers}.");
        int last = _linearPositions[k - 1];
        Tensor h = x.alias();
        int i = 0;
        foreach (var m in layers.children())
        {
            var next = Apply(m, h);
            h.Dispose();
            h = next;
            if (i++ == last) break;
        }
        return h;
    }

    // The layers one by one (as the Sequential would), the Linear and LayerNorm ones through Autocast.
    static Tensor Apply(nn.Module m, Tensor h) => m switch
    {
        Linear linear => Autocast.Linear(linear, h),
        LayerNorm norm => Autocast.LayerNorm(norm, h),
        _ => ((nn.Module<Tensor, Tensor>)m).forward(h),
    };
}
