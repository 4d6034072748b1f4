using AttnDistill.Tensors;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace AttnDistill.Models;

/// <summary>
/// Pre-norm transformer block: x + Attn(LN(x)); x + MLP(LN(x)). Under <see cref="Autocast"/> the
/// branches return bf16 and the sums are fp32 (type promotion), so the residual stream stays fp32.
/// </summary>
public sealed class Block : nn.Module<Tensor, Tensor>
{
#pragma warning disable IDE1006
    private readonly LayerNorm norm1;
    private readonly Attention attn;
    private readonly DropPath drop_path;
    private readonly LayerNorm norm2;
    private readonly Mlp mlp;
#pragma warning restore IDE1006

    public Block(VitConfig cfg, double dropPath) : base(nameof(Block))
    {
        norm1 = nn.LayerNorm(cfg.EmbedDim, eps: cfg.LayerNormEps);
        attn = new Attention(cfg.EmbedDim, cfg.NumHeads, cfg.QkvBias, cfg.AttnDropRate, cfg.DropRate);
        drop_path = new DropPath(dropPath);
        norm2 = nn.LayerNorm(cfg.EmbedDim, eps: cfg.LayerNormEps);
        mlp = new Mlp(cfg.EmbedDim, cfg.MlpHiddenDim, cfg.DropRate);
        RegisterComponents();
    }

    public Attention Attn => attn;

    public override Tensor forward(Tensor x) => Forward(x, false, false, out _);

    public Tensor Forward(Tensor x, bool returnAttention, bool valueNorms, out BlockAttention? attention)
    {
        Tensor h;
        using (var n1 = Autocast.LayerNorm(norm1, x))
        using (var a = attn.Forward(n1, returnAttention, valueNorms, out attention))
        using (var dropped = drop_path.forward(a))
            h = x.add(dropped, KeptScalars.One);
        using (h)
        using (var n2 = Autocast.LayerNorm(norm2, h))
        using (var m = mlp.forward(n2))
        using (var dropped = drop_path.forward(m))
            return h.add(dropped, KeptScalars.One);
    }
}
