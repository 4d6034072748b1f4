using AttnDistill.Tensors;
using AttnDistill.Models;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace AttnDistill.Pretraining;

/// <summary>What <see cref="MaskedAutoencoder.RandomMasking"/> returns.</summary>
/// <param name="Visible">Tokens of the kept patches in shuffled order, (B, len_keep, D).</param>
/// <param name="Mask">(B, L) float: 0 kept, 1 removed, in the original patch order.</param>
/// <param name="IdsRestore">(B, L) int64: the inverse permutation that unshuffles [kept, removed].</param>
public readonly record struct MaskingResult(Tensor Visible, Tensor Mask, Tensor IdsRestore);

/// <summary>What <see cref="MaskedAutoencoder.ForwardEncoder"/> returns.</summary>
/// <param name="Latent">Normalized encoder output: CLS then the visible patches, (B, 1 + len_keep, D).</param>
/// <param name="Mask">(B, L): 0 kept, 1 removed.</param>
/// <param name="IdsRestore">(B, L) int64 unshuffle indices.</param>
public readonly record struct MaeEncoding(Tensor Latent, Tensor Mask, Tensor IdsRestore);

/// <summary>What <see cref="MaskedAutoencoder.Forward"/> returns.</summary>
/// <param name="Loss">Scalar: mean per-patch MSE over the removed patches.</param>
/// <param name="Pred">Predicted pixels of every patch, (B, L, p*p*C), in target space (normalized if norm_pix_loss).</param>
/// <param name="Mask">(B, L): 0 kept, 1 removed.</param>
public readonly record struct MaeOutput(Tensor Loss, Tensor Pred, Tensor Mask);

/// <summary>
/// Masked autoencoder (He et al. 2022) split by step as models_mae.py: <see cref="Patchify"/>,
/// <see cref="RandomMasking"/>, <see cref="ForwardEncoder"/>, <see cref="ForwardDecoder"/>,
/// <see cref="ForwardLoss"/>. The encoder is a plain <see cref="VisionTransformer"/> (sin-cos
/// position embedding) held as <c>encoder</c>, so its state dict keys are MAE's encoder keys under
/// <c>encoder.</c> (see <see cref="MaeStateDict"/>); the decoder keys are MAE's own
/// (<c>decoder_embed</c>, <c>mask_token</c>, <c>decoder_pos_embed</c>, <c>decoder_blocks</c>,
/// <c>decoder_norm</c>, <c>decoder_pred</c>).
/// </summary>
public sealed class MaskedAutoencoder : nn.Module
{
#pragma warning disable IDE1006
    private readonly VisionTransformer encoder;
    private readonly Linear decoder_embed;
    private readonly Parameter mask_token;
    private readonly Parameter decoder_pos_embed;
    private readonly ModuleList<Block> decoder_blocks;
    private readonly LayerNorm decoder_norm;
    private readonly Linear decoder_pred;
#pragma warning restore IDE1006

    public MaeConfig Config { get; }

    public MaskedAutoencoder(MaeConfig config) : base(nameof(MaskedAutoencoder))
    {
        Config = config.Validate();
        var enc = config.Encoder;
        var dec = config.DecoderBlockConfig;
        encoder = new VisionTransformer(enc);
        decoder_embed = nn.Linear(enc.EmbedDim, config.DecoderEmbedDim);
        mask_token = new Parameter(zeros(1, 1, config.DecoderEmbedDim));
        // Fixed, like the encoder's: a frozen parameter so it is in the state dict as in MAE.
        decoder_pos_embed = new Parameter(PositionEmbedding.SinCos2D(config.DecoderEmbedDim, enc.GridSize).unsqueeze(0), requires_grad: false);
        decoder_blocks = new ModuleList<Block>(Enumerable.Range(0, config.DecoderDepth).Select(_ => new Block(dec, 0.0)).ToArray());
        decoder_norm = nn.LayerNorm(config.DecoderEmbedDim, eps: enc.LayerNormEps);
        decoder_pred = nn.Linear(config.DecoderEmbedDim, config.PatchPixels);
        RegisterComponents();
        MaeWeightInit.Init(this);
    }

    /// <summary>The encoder: after pre-training it is the teacher backbone (see <see cref="MaeEncoderExport"/>).</summary>
    public VisionTransformer Encoder => encoder;
    public Parameter MaskToken => mask_token;
    public Parameter DecoderPosEmbed => decoder_pos_embed;
    public Linear DecoderEmbed => decoder_embed;
    public Linear DecoderPred => decoder_pred;
    public ModuleList<Block> DecoderBlocks => decoder_blocks;
    public LayerNorm DecoderNorm => decoder_norm;

    int P => Config.Encoder.PatchSize;
    int C => Config.Encoder.InChans;

    /// <summary>(B, C, H, W) -> (B, L, p*p*C), each patch flattened row, column, channel ('nchpwq->nhwpqc').</summary>
    public Tensor Patchify(Tensor imgs)
    {
        long b = imgs.shape[0], h = imgs.shape[2], w = imgs.shape[3];
        if (imgs.shape[1] != C || h % P != 0 || w % P != 0)
            throw new ArgumentException($"images of shape [{string.Join(", ", imgs.shape)}] do not split into {C}-channel {P}x{P} patches.");
        long gh = h / P, gw = w / P;
        using var x = imgs.reshape(b, C, gh, P, gw, P);                 // (B, C, gh, p, gw, q)
        using var perm = x.permute(0, 2, 4, 3, 5, 1);                   // (B, gh, gw, p, q, C)
        return perm.reshape(b, gh * gw, P * P * C);                     // (B, L, p*p*C)
    }

    /// <summary>(B, L, p*p*C) -> (B, C, H, W) for a square grid; the inverse of <see cref="Patchify"/>.</summary>
    public Tensor Unpatchify(Tensor x)
    {
        long b = x.shape[0], l = x.shape[1];
        long g = TokenGrid.SideOfPatches(l) ?? 0;
        if (g == 0 || x.shape[2] != P * P * C)
            throw new ArgumentException($"patches of shape [{string.Join(", ", x.shape)}] are not a square grid of {P}x{P}x{C} patches.");
        using var y = x.reshape(b, g, g, P, P, C);                      // (B, gh, gw, p, q, C)
        using var perm = y.permute(0, 5, 1, 3, 2, 4);                   // (B, C, gh, p, gw, q)
        return perm.reshape(b, C, g * P, g * P);                        // (B, C, H, W)
    }

    /// <summary>
    /// Per-sample random masking by shuffling, exactly as MAE's random_masking: noise (B, L)
    /// uniform in [0, 1) from the torch generator unless given; patches with the smallest noise
    /// are kept; len_keep = int(L x (1 - ratio)). x: (B, L, D).
    /// </summary>
    public static MaskingResult RandomMasking(Tensor x, double maskRatio, Tensor? noise = null)
    {
        long b = x.shape[0], l = x.shape[1], d = x.shape[2];
        int lenKeep = MaeConfig.KeepCount(l, maskRatio);
        using var scope = NewDisposeScope();
        var n = noise is null ? rand(b, l, device: x.device) : noise.to(x.device);
        if (n.shape.Length != 2 || n.shape[0] != b || n.shape[1] != l)
            throw new ArgumentException($"masking noise must be ({b}, {l}), got [{string.Join(", ", n.shape)}].");
        var idsShuffle = n.argsort(1);                                  // ascending: small keep, large remove
        var idsRestore = idsShuffle.argsort(1);                         // (B, L)
        var idsKeep = idsShuffle.narrow(1, 0, lenKeep);                 // (B, len_keep)
        var visible = x.gather(1, idsKeep.unsqueeze(-1).expand(b, lenKeep, d)); // (B, len_keep, D)
        var mask = ones(b, l, device: x.device);
        mask.narrow(1, 0, lenKeep).zero_();
        mask = mask.gather(1, idsRestore);                              // (B, L), 0 keep / 1 remove
        return new MaskingResult(visible.MoveToOuterDisposeScope(), mask.MoveToOuterDisposeScope(), idsRestore.MoveToOuterDisposeScope());
    }

    /// <summary>
    /// Patch embedding + position, masking, CLS, encoder blocks and norm. imgs (B, C, H, W) ->
    /// latent (B, 1 + len_keep, D). <paramref name="maskRatio"/> defaults to the config's.
    /// </summary>
    public MaeEncoding ForwardEncoder(Tensor imgs, double? maskRatio = null, Tensor? noise = null)
    {
        using var scope = NewDisposeScope();
        int gh = (int)(imgs.shape[2] / P), gw = (int)(imgs.shape[3] / P);
        var pos = encoder.PositionTableFor(gh, gw);                     // (1, 1 + L, D)
        var patches = encoder.PatchEmbedding.forward(imgs);            // (B, L, D)
        var x = patches.Plus(pos.narrow(1, 1, pos.shape[1] - 1));
        var m = RandomMasking(x, maskRatio ?? Config.MaskRatio, noise);
        var cls = encoder.ClsToken.Plus(pos.narrow(1, 0, 1)).expand(x.shape[0], -1, -1); // (B, 1, D)
        var tokens = cat(new[] { cls, m.Visible }, 1);                 // (B, 1 + len_keep, D)
        var f = encoder.RunBlocks(tokens, AttentionRequest.None);
        var latent = Autocast.LayerNorm(encoder.Norm, f.Hidden);
        return new MaeEncoding(latent.MoveToOuterDisposeScope(), m.Mask.MoveToOuterDisposeScope(), m.IdsRestore.MoveToOuterDisposeScope());
    }

    /// <summary>
    /// Decoder: embed, append mask tokens, unshuffle, add the fixed position table, blocks, norm,
    /// pixel head, drop CLS. latent (B, 1 + len_keep, D) -> pred (B, L, p*p*C).
    /// </summary>
    public Tensor ForwardDecoder(Tensor latent, Tensor idsRestore)
    {
        using var scope = NewDisposeScope();
        var x = Autocast.Linear(decoder_embed, latent);                 // (B, 1 + K, Dd)
        long b = x.shape[0], k = x.shape[1] - 1, dd = x.shape[2], l = idsRestore.shape[1];
        var maskTokens = mask_token.expand(b, l - k, dd);              // (B, L - K, Dd)
        var shuffled = cat(new[] { x.narrow(1, 1, k), maskTokens }, 1);  // (B, L, Dd), kept first
        var restored = shuffled.gather(1, idsRestore.unsqueeze(-1).expand(b, l, dd)); // original order
        x = cat(new[] { x.narrow(1, 0, 1), restored }, 1);             // (B, 1 + L, Dd)
        x = x.Plus(DecoderPositionTable(l));
        foreach (var blk in decoder_blocks) x = blk.forward(x);
        x = Autocast.LayerNorm(decoder_norm, x);
        x = Autocast.Linear(decoder_pred, x);                           // (B, 1 + L, p*p*C)
        return x.narrow(1, 1, l).MoveToOuterDisposeScope();
    }

    Tensor DecoderPositionTable(long numPatches)
    {
        if (numPatches == decoder_pos_embed.shape[1] - 1) return decoder_pos_embed;
        int g = TokenGrid.SideOfPatches(numPatches) ?? throw new ArgumentException($"{numPatches} patches are not a square grid: the decoder needs square images.");
        return PositionEmbedding.SinCos2D(Config.DecoderEmbedDim, g).unsqueeze(0).to(decoder_pos_embed.device);
    }

    /// <summary>MSE on removed patches, against per-patch normalized pixels when the config says so.</summary>
    public Tensor ForwardLoss(Tensor imgs, Tensor pred, Tensor mask)
    {
        using var target = Patchify(imgs);
        return MaskedReconstructionLoss(target, pred, mask, Config.NormPixLoss);
    }

    /// <summary>
    /// MAE's forward_loss on patchified targets (B, L, p*p*C): per-patch mean squared error, then
    /// the mean over removed patches (mask 1). norm_pix: target = (t - mean) / sqrt(var + 1e-6),
    /// per patch, with the unbiased variance as torch.var.
    /// </summary>
    public static Tensor MaskedReconstructionLoss(Tensor target, Tensor pred, Tensor mask, bool normPix)
    {
        using var scope = NewDisposeScope();
        var t = normPix ? NormalizePatches(target) : target;
        var p = pred.dtype == ScalarType.Float32 ? pred : pred.to(ScalarType.Float32);   // a loss is fp32 under autocast too
        var perPatch = (p - t).Squared().mean(new long[] { -1 });      // (B, L)
        var loss = (perPatch * mask).sum() / mask.sum();
        return loss.MoveToOuterDisposeScope();
    }

    /// <summary>Per-patch normalization of norm_pix_loss, (B, L, P) -> (B, L, P).</summary>
    public static Tensor NormalizePatches(Tensor target)
    {
        using var scope = NewDisposeScope();
        var mean = target.mean(new long[] { -1 }, keepdim: true);
        var variance = target.var(-1, unbiased: true, keepdim: true);
        return ((target - mean) / variance.Plus(1e-6).sqrt()).MoveToOuterDisposeScope();
    }

    /// <summary>imgs (B, C, H, W) -> loss, pred (B, L, p*p*C), mask (B, L). Noise fixes the masks (tests, pictures).</summary>
    public MaeOutput Forward(Tensor imgs, Tensor? noise = null)
    {
        using var scope = NewDisposeScope();
        var enc = ForwardEncoder(imgs, null, noise);
        var decoded = ForwardDecoder(enc.Latent, enc.IdsRestore);
        // Under autocast the pixel head returns bf16: loss and callers get fp32, as the loss entry casts.
        var pred = decoded.dtype == ScalarType.Float32 ? decoded : decoded.to(ScalarType.Float32);
        var loss = ForwardLoss(imgs, pred, enc.Mask);
        return new MaeOutput(loss.MoveToOuterDisposeScope(), pred.MoveToOuterDisposeScope(), enc.Mask.MoveToOuterDisposeScope());
    }
}
