using AttnDistill.Pretraining;
using Xunit;
using static TorchSharp.torch;

namespace AttnDistill.Tests.Pretraining;

/// <summary>Against tests/fixtures/mae/make_mae_fixtures.py (models_mae.py semantics, PyTorch 1.13).</summary>
public class MaeParityTests
{
    [Fact]
    public void PatchifyAndUnpatchifyMatchMae()
    {
        using var scope = NewDisposeScope();
        using var model = new MaskedAutoencoder(MaeFixtures.Config);
        var imgs = MaeFixtures.Get("imgs");
        var patches = model.Patchify(imgs);
        MaeFixtures.AssertEqual(MaeFixtures.Get("patchify"), patches, "patchify (MAE's 'nchpwq->nhwpqc')");
        MaeFixtures.AssertEqual(imgs, model.Unpatchify(patches), "unpatchify round trip");
    }

    [Fact]
    public void MaskingFromTheSameNoiseMatchesMae()
    {
        using var scope = NewDisposeScope();
        var noise = MaeFixtures.Get("noise");
        var x = arange(3 * 16, dtype: float32).reshape(3, 16, 1);      // token value = its flat index
        var m = MaskedAutoencoder.RandomMasking(x, 0.75, noise);
        MaeFixtures.AssertEqual(MaeFixtures.Get("mask"), m.Mask, "mask");
        MaeFixtures.AssertEqual(MaeFixtures.Get("ids_restore"), m.IdsRestore, "ids_restore");
        var keep = MaeFixtures.Get("ids_keep");
        var expectedVisible = (keep + arange(3).unsqueeze(1) * 16).to(float32).unsqueeze(-1);
        MaeFixtures.AssertEqual(expectedVisible, m.Visible, "visible tokens (the kept patches in shuffled order)");
    }

    [Fact]
    public void EncoderDecoderAndLossMatchMae()
    {
        using var scope = NewDisposeScope();
        using var model = MaeFixtures.LoadModel();
        using var _ = no_grad();
        var imgs = MaeFixtures.Get("imgs");
        var enc = model.ForwardEncoder(imgs, noise: MaeFixtures.Get("noise"));
        MaeFixtures.AssertClose(MaeFixtures.Get("latent"), enc.Latent, "latent");
        MaeFixtures.AssertEqual(MaeFixtures.Get("mask"), enc.Mask, "encoder mask");
        var pred = model.ForwardDecoder(enc.Latent, enc.IdsRestore);
        MaeFixtures.AssertClose(MaeFixtures.Get("pred"), pred, "pred");

        var target = model.Patchify(imgs);
        var normPix = MaskedAutoencoder.MaskedReconstructionLoss(target, pred, enc.Mask, normPix: true);
        var plain = MaskedAutoencoder.MaskedReconstructionLoss(target, pred, enc.Mask, normPix: false);
        MaeFixtures.AssertClose(MaeFixtures.Get("loss_norm_pix"), normPix.reshape(1), "loss (norm_pix)");
        MaeFixtures.AssertClose(MaeFixtures.Get("loss_plain"), plain.reshape(1), "loss (plain)");

        // Forward chains the same steps with the config's norm_pix_loss (true here).
        var output = model.Forward(imgs, MaeFixtures.Get("noise"));
        MaeFixtures.AssertClose(MaeFixtures.Get("loss_norm_pix"), output.Loss.reshape(1), "Forward loss");
        MaeFixtures.AssertClose(MaeFixtures.Get("pred"), output.Pred, "Forward pred");
    }

    [Fact]
    public void StateDictKeysAreMaesUnderTheEncoderPrefix()
    {
        using var model = new MaskedAutoencoder(MaeFixtures.Config);
        var ours = model.state_dict().Keys.Select(MaeStateDict.ToMaeKey).Order().ToArray();
        var maes = MaeFixtures.MaeNamedWeights();
        Assert.Equal(maes.Keys.Order().ToArray(), ours);
        foreach (var t in maes.Values) t.Dispose();
        Assert.Equal("encoder.blocks.0.norm1.weight", MaeStateDict.FromMaeKey("blocks.0.norm1.weight"));
        Assert.Equal("decoder_blocks.0.norm1.weight", MaeStateDict.FromMaeKey("decoder_blocks.0.norm1.weight"));
        Assert.Equal("mask_token", MaeStateDict.FromMaeKey("mask_token"));
    }
}
