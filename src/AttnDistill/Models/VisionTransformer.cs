using AttnDistill.Tensors;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace AttnDistill.Models;

/// <summary>Which blocks report their CLS attention row.</summary>
public enum AttentionRequest { None, LastBlock, AllBlocks }

/// <summary>
/// What <see cref="VisionTransformer.ForwardFeatures"/> returns.
/// </summary>
/// <param name="Hidden">Output tokens of the last block before the final norm, (B, 1 + N, D).</param>
/// <param name="Attention">Per requested block, in block order: CLS rows (B, heads, 1 + N) and value norms.</param>
public sealed record VitFeatures(Tensor Hidden, IReadOnlyList<BlockAttention> Attention);

/// <summary>
/// DINO/timm-style Vision Transformer backbone (no classification head). Field names equal the
/// PyTorch attribute names so DINO, MAE, Mugs, iBOT and timm state dicts map 1:1.
/// </summary>
public sealed class VisionTransformer : nn.Module<Tensor, Tensor>
{
#pragma warning disable IDE1006
    private readonly PatchEmbed patch_embed;
    private readonly Parameter cls_token;
    private readonly Parameter pos_embed;
    private readonly Dropout pos_drop;
    private readonly ModuleList<Block> blocks;
    private readonly LayerNorm norm;
#pragma warning restore IDE1006

    public VitConfig Config { get; }

    public VisionTransformer(VitConfig config) : base(nameof(VisionTransformer))
    {
        Config = config.Validate();
        patch_embed = new PatchEmbed(config.PatchSize, config.InChans, config.EmbedDim);
        cls_token = new Parameter(zeros(1, 1, config.EmbedDim));
        bool learnable = config.PosEmbed == PosEmbedKind.Learnable;
        pos_embed = new Parameter(
            learnable ? zeros(1, config.NumPatches + 1, config.EmbedDim)
                      : PositionEmbedding.SinCos2D(config.EmbedDim, config.GridSize).unsqueeze(0),
            requires_grad: learnable);
        pos_drop = nn.Dropout(config.DropRate);
        // Stochastic depth grows linearly with depth (timm's decay rule).
        blocks = new ModuleList<Block>(Enumerable.Range(0, config.Depth)
            .Select(i => new Block(config, config.Depth == 1 ? 0 : config.DropPathRate * i / (config.Depth - 1)))
            .ToArray());
        norm = nn.LayerNorm(config.EmbedDim, eps: config.LayerNormEps);
        RegisterComponents();
        WeightInit.InitVit(this);
    }

    public PatchEmbed PatchEmbedding => patch_embed;
    public Parameter ClsToken => cls_token;
    public Parameter PosEmbed => pos_embed;
    public ModuleList<Block> Blocks => blocks;
    public LayerNorm Norm => norm;

    /// <summary>Switches every block between fused SDPA (default) and DINO's explicit attention.</summary>
    public bool UseFusedAttention
    {
        set { foreach (var b in blocks) b.Attn.UseFusedAttention = value; }
    }

    /// <summary>Patch tokens with CLS and position embedding: (B, C, H, W) -> (B, 1 + N, D).</summary>
    public Tensor PrepareTokens(Tensor x)
    {
        long b = x.shape[0];
        int gh = (int)(x.shape[2] / Config.PatchSize), gw = (int)(x.shape[3] / Config.PatchSize);
        using var patches = patch_embed.forward(x);                                  // (B, N, D)
        using var cls = cls_token.expand(b, -1, -1);                                 // (B, 1, D)
        using var tokens = cat(new[] { cls, patches }, 1);                           // (B, 1 + N, D)
        using var pos = PositionTableFor(gh, gw);
        using var withPos = tokens.add(pos, KeptScalars.One);
        return pos_drop.forward(withPos);
    }

    /// <summary>The position table for a gh x gw grid: the stored one, resampled or recomputed.</summary>
    public Tensor PositionTableFor(int gridH, int gridW)
    {
        if (gridH == Config.GridSize && gridW == Config.GridSize) return pos_embed.alias();
        if (Config.PosEmbed == PosEmbedKind.SinCos && gridH == gridW)
        {
            using var table = PositionEmbedding.SinCos2D(Config.EmbedDim, gridH);
            return table.unsqueeze(0).to(pos_embed.device);
        }
        return PosEmbedResampling.Resample(pos_embed, gridH, gridW, PosEmbedRule.Dino);
    }

    /// <summary>Runs the blocks on prepared tokens; collects attention of the requested blocks.</summary>
    public VitFeatures RunBlocks(Tensor tokens, AttentionRequest request, bool valueNorms = false)
    {
        var attention = new List<BlockAttention>();
        Tensor x = tokens.alias();
        for (int i = 0; i < blocks.Count; i++)
        {
            bool want = request == AttentionRequest.AllBlocks
                        || (request == AttentionRequest.LastBlock && i == blocks.Count - 1);
            var next = blocks[i].Forward(x, want, valueNorms, out var att);
            x.Dispose();
            x = next;
            if (att is { } a) attention.Add(a);
        }
        return new VitFeatures(x, attention);
    }

    /// <summary>Last-block tokens (pre-norm) and the requested attention rows.</summary>
    public VitFeatures ForwardFeatures(Tensor x, AttentionRequest request = AttentionRequest.None, bool valueNorms = false)
    {
        using var tokens = PrepareTokens(x);
        return RunBlocks(tokens, request, valueNorms);
    }

    /// <summary>The backbone feature: normalized CLS token, (B, C, H, W) -> (B, D).</summary>
    public override Tensor forward(Tensor x)
    {
        var f = ForwardFeatures(x);
        using var hidden = f.Hidden;
        using var cls = hidden.select(1, 0);        // LayerNorm is per token: normalize CLS only
        return Autocast.LayerNorm(norm, cls);
    }

    /// <summary>CLS attention row of the last block, (B, heads, 1 + N), as DINO's get_last_selfattention[:, :, 0].</summary>
    public Tensor GetLastSelfAttention(Tensor x)
    {
        var f = ForwardFeatures(x, AttentionRequest.LastBlock);
        f.Hidden.Dispose();
        return f.Attention[0].ClsAttention;
    }
}
