using AttnDistill.Tensors;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace AttnDistill.Models;

/// <summary>What a block reports about its attention when asked (docs/METHOD.md, section 1.1).</summary>
/// <param name="ClsAttention">Post-softmax CLS row: (B, heads, 1 + N), CLS-to-CLS first, patches in raster order.</param>
/// <param name="ValueNorms">L2 norm of every token's value vector per head, (B, heads, 1 + N), or null when not asked.</param>
public readonly record struct BlockAttention(Tensor ClsAttention, Tensor? ValueNorms);

/// <summary>
/// Multi-head self-attention with a fused (libtorch SDPA) and an explicit path. Under
/// <see cref="Autocast"/> the products run in bf16 and the softmax (the distilled CLS row) in fp32.
/// </summary>
public sealed class Attention : nn.Module<Tensor, Tensor>
{
#pragma warning disable IDE1006
    private readonly Linear qkv;
    private readonly Dropout attn_drop;
    private readonly Linear proj;
    private readonly Dropout proj_drop;
#pragma warning restore IDE1006

    private readonly int _numHeads;
    // A Scalar the module keeps alive (see KeptScalars), not a temporary per call.
    private readonly Scalar _scale;
    private readonly double _attnDropRate;

    /// <summary>
    /// True (default): outputs come from libtorch's fused scaled_dot_product_attention; only the CLS
    /// row is computed explicitly when asked for. False: the whole attention matrix is materialized
    /// as DINO does (reference path, used to test that both agree).
    /// </summary>
    public bool UseFusedAttention { get; set; } = true;

    public Attention(int dim, int numHeads, bool qkvBias, double attnDropRate, double projDropRate) : base(nameof(Attention))
    {
        _numHeads = numHeads;
        _scale = Math.Pow(dim / numHeads, -0.5).ToScalar();
        _attnDropRate = attnDropRate;
        qkv = nn.Linear(dim, dim * 3, hasBias: qkvBias);
        attn_drop = nn.Dropout(attnDropRate);
        proj = nn.Linear(dim, dim);
        proj_drop = nn.Dropout(projDropRate);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => Forward(x, returnAttention: false, valueNorms: false, out _);

    /// <summary>(B, 1+N, D) -> (B, 1+N, D); fills <paramref name="attention"/> when asked.</summary>
    public Tensor Forward(Tensor x, bool returnAttention, bool valueNorms, out BlockAttention? attention)
    {
        long b = x.shape[0], n = x.shape[1], c = x.shape[2];
        using var qkvOut = Autocast.Linear(qkv, x);                                         // (B, N, 3C)
        using var qkvHeads = qkvOut.reshape(b, n, 3, _numHeads, c / _numHeads).permute(2, 0, 3, 1, 4); // (3, B, h, N, hd)
        var parts = qkvHeads.unbind(0);
        using var q = parts[0];
        using var k = parts[1];
        using var v = parts[2];

        Tensor context;                                                                      // (B, h, N, hd)
        Tensor? clsRow = null;
        if (UseFusedAttention)
        {
            double p = training ? _attnDropRate : 0.0;
            context = Autocast.ScaledDotProductAttention(q, k, v, p);
            if (returnAttention)
            {
                // Only the CLS query's row is needed: (B, h, 1, hd) x (B, h, hd, N) is 1/N of the full map.
                using var qCls = q.narrow(2, 0, 1);
                using var kT = k.transpose(-2, -1);
                using var logits = Autocast.Matmul(qCls, kT).mul_(_scale);                  // (B, h, 1, N)
                using var row = Autocast.Softmax(logits, -1);
                clsRow = row.squeeze(2);                                                     // (B, h, N)
            }
        }
        else
        {
            using var kT = k.transpose(-2, -1);
            using var logits = Autocast.Matmul(q, kT).mul_(_scale);                       // (B, h, N, N)
            using var attn = Autocast.Softmax(logits, -1);
            if (returnAttention) clsRow = attn.select(2, 0);                                 // (B, h, N)
            using var dropped = attn_drop.forward(attn);
            context = Autocast.Matmul(dropped, v);
        }

        attention = returnAttention
            ? new BlockAttention(clsRow!, valueNorms ? Autocast.VectorNorm(v) : null)      // norms: (B, h, N)
            : null;

        using (context)
        {
            using var merged = context.transpose(1, 2).reshape(b, n, c);                    // (B, N, C)
            using var projected = Autocast.Linear(proj, merged);
            return proj_drop.forward(projected);
        }
    }
}
