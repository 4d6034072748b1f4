using AttnDistill.Models;
using AttnDistill.Pretraining;
using TorchSharp;
using TorchSharp.Modules;
using Xunit;
using static TorchSharp.torch;

namespace AttnDistill.Tests.Pretraining;

public class MaskedAutoencoderTests
{
    static MaeConfig Tiny(int image = 16, int patch = 4, int chans = 3) => new()
    {
        Encoder = new VitConfig { ImageSize = image, PatchSize = patch, InChans = chans, EmbedDim = 32, Depth = 2, NumHeads = 4, PosEmbed = PosEmbedKind.SinCos },
        DecoderEmbedDim = 16,
        DecoderDepth = 1,
        DecoderNumHeads = 2,
    };

    [Fact]
    public void MaskingKeepsLenKeepPatchesPerImageAndDiffersPerImage()
    {
        using var scope = NewDisposeScope();
        torch.manual_seed(3);
        var x = randn(8, 64, 5);
        var m = MaskedAutoencoder.RandomMasking(x, 0.75, null);
        Assert.Equal(new long[] { 8, 16, 5 }, m.Visible.shape);
        // Exactly L - len_keep removed per image, binary.
        Assert.True(m.Mask.sum(1).eq(48).all().item<bool>());
        Assert.True((m.Mask.eq(0) | m.Mask.eq(1)).all().item<bool>());
        // The visible tokens are the rows where mask == 0.
        for (int i = 0; i < 8; i++)
        {
            var keptRows = x[i].index(m.Mask[i].eq(0));
            var sortedVisible = m.Visible[i].index(m.Visible[i][.., 0].argsort());
            var sortedKept = keptRows.index(keptRows[.., 0].argsort());
            Assert.True(sortedVisible.equal(sortedKept).all().item<bool>());
        }
        // Per-image masks: with 64 patches, two equal masks among 8 images would be a bug, not chance.
        for (int i = 0; i < 8; i++)
            for (int j = i + 1; j < 8; j++)
                Assert.False(m.Mask[i].equal(m.Mask[j]).all().item<bool>(), $"images {i} and {j} got the same mask");
        // ids_restore inverts the shuffle: it is a permutation of 0..L-1.
        Assert.True(m.IdsRestore.sort(1).Values.equal(arange(64).expand(8, 64)).all().item<bool>());
    }

    [Fact]
    public void OneSeedGivesTheSameMasks()
    {
        using var scope = NewDisposeScope();
        var x = zeros(4, 16, 2);
        torch.manual_seed(11);
        var a = MaskedAutoencoder.RandomMasking(x, 0.75).Mask;
        torch.manual_seed(11);
        var b = MaskedAutoencoder.RandomMasking(x, 0.75).Mask;
        var c = MaskedAutoencoder.RandomMasking(x, 0.75).Mask;
        Assert.True(a.equal(b).all().item<bool>());
        Assert.False(a.equal(c).all().item<bool>());
    }

    [Theory]
    [InlineData(16, 4, 3)]
    [InlineData(28, 7, 1)]
    [InlineData(32, 8, 3)]
    public void PatchifyUnpatchifyRoundTrip(int image, int patch, int chans)
    {
        using var scope = NewDisposeScope();
        using var model = new MaskedAutoencoder(Tiny(image, patch, chans));
        var imgs = randn(2, chans, image, image);
        var patches = model.Patchify(imgs);
        int l = (image / patch) * (image / patch);
        Assert.Equal(new long[] { 2, l, patch * patch * chans }, patches.shape);
        Assert.True(model.Unpatchify(patches).equal(imgs).all().item<bool>());
        // Patch (row 0, col 1) is the image block rows 0..p-1, cols p..2p-1, channel-last within a pixel.
        var block = imgs[0, .., ..patch, patch..(2 * patch)].permute(1, 2, 0).reshape(-1);
        Assert.True(patches[0, 1].equal(block).all().item<bool>());
    }

    [Fact]
    public void LossCountsOnlyMaskedPatches()
    {
        using var scope = NewDisposeScope();
        torch.manual_seed(5);
        using var model = new MaskedAutoencoder(Tiny());
        model.eval();
        using var _ = no_grad();
        var imgs = randn(2, 3, 16, 16);
        var output = model.Forward(imgs);
        var mask = output.Mask;
        long visible = mask[0].eq(0).nonzero()[0, 0].item<long>();
        long removed = mask[0].eq(1).nonzero()[0, 0].item<long>();

        var changedVisible = output.Pred.clone();
        changedVisible[0, visible] += 100f;
        var lossVisible = model.ForwardLoss(imgs, changedVisible, mask);
        Assert.Equal(output.Loss.item<float>(), lossVisible.item<float>());

        var changedRemoved = output.Pred.clone();
        changedRemoved[0, removed] += 100f;
        Assert.True(model.ForwardLoss(imgs, changedRemoved, mask).item<float>() > output.Loss.item<float>() + 1);

        // The mean is over removed patches: a per-patch loss of 1 on every removed patch gives 1.
        var target = model.Patchify(imgs);
        var pred = MaskedAutoencoder.NormalizePatches(target) + 1;
        Assert.Equal(1.0, MaskedAutoencoder.MaskedReconstructionLoss(target, pred, mask, normPix: true).item<float>(), 5);
    }

    [Fact]
    public void NormPixTargetsHaveZeroMeanAndUnitUnbiasedVariancePerPatch()
    {
        using var scope = NewDisposeScope();
        var t = randn(2, 5, 48) * 3 + 1;
        var n = MaskedAutoencoder.NormalizePatches(t);
        Assert.True(n.mean(new long[] { -1 }).abs().max().item<float>() < 1e-5);
        Assert.True((n.var(-1, unbiased: true) - 1).abs().max().item<float>() < 1e-4);
    }

    [Fact]
    public void InitFollowsMae()
    {
        torch.manual_seed(0);
        using var model = new MaskedAutoencoder(Tiny() with { DecoderEmbedDim = 64, DecoderNumHeads = 4 });
        foreach (var (name, m) in model.named_modules())
        {
            if (m is Linear lin)
            {
                long fanOut = lin.weight.shape[0], fanIn = lin.weight.shape[1];
                double bound = Math.Sqrt(6.0 / (fanIn + fanOut));
                Assert.True(lin.weight.abs().max().item<float>() <= bound + 1e-6, $"{name}: beyond the xavier bound");
                // Uniform on [-a, a] has std a / sqrt(3).
                Assert.InRange(lin.weight.std().item<float>(), 0.85 * bound / Math.Sqrt(3), 1.15 * bound / Math.Sqrt(3));
                Assert.Equal(0f, lin.bias!.abs().max().item<float>());
            }
            if (m is LayerNorm ln)
            {
                Assert.True(ln.weight!.eq(1).all().item<bool>());
                Assert.True(ln.bias!.eq(0).all().item<bool>());
            }
        }
        var proj = model.Encoder.PatchEmbedding.Proj.weight!;               // (32, 3, 4, 4): fans 48 and 32
        Assert.True(proj.abs().max().item<float>() <= Math.Sqrt(6.0 / (48 + 32)) + 1e-6);
        Assert.True(proj.abs().max().item<float>() > 0.8 * Math.Sqrt(6.0 / (48 + 32)));
        Assert.InRange(model.Encoder.ClsToken.std().item<float>(), 0.012, 0.03);
        Assert.InRange(model.MaskToken.std().item<float>(), 0.014, 0.026);
        // Position tables are MAE's fixed sin-cos and are not trained.
        using var table = PositionEmbedding.SinCos2D(64, 4).unsqueeze(0);
        Assert.True(model.DecoderPosEmbed.equal(table).all().item<bool>());
        Assert.False(model.DecoderPosEmbed.requires_grad);
        Assert.False(model.Encoder.PosEmbed.requires_grad);
    }

    [Fact]
    public void EveryTrainableParameterGetsAGradient()
    {
        torch.manual_seed(2);
        using var model = new MaskedAutoencoder(Tiny());
        using var scope = NewDisposeScope();
        var output = model.Forward(randn(2, 3, 16, 16));
        output.Loss.backward();
        var trainable = model.named_parameters().Where(p => p.parameter.requires_grad).ToList();
        Assert.Equal(model.named_parameters().Count() - 2, trainable.Count);   // all but the two sin-cos tables
        foreach (var (name, p) in trainable)
            Assert.True(p.grad is { } g && g.abs().sum().item<float>() > 0, $"{name} got no gradient");
    }

    [Fact]
    public void AFewAdamWStepsLowerTheLossOnAFixedBatch()
    {
        torch.manual_seed(7);
        using var model = new MaskedAutoencoder(Tiny());
        model.train();
        using var imgs = randn(4, 3, 16, 16);
        using var noise = rand(4, 16);
        using var optimizer = optim.AdamW(model.parameters().Where(p => p.requires_grad), lr: 2e-3, weight_decay: 0.05);
        var losses = new List<float>();
        for (int step = 0; step < 30; step++)
        {
            using var scope = NewDisposeScope();
            optimizer.zero_grad();
            var output = model.Forward(imgs, noise);
            output.Loss.backward();
            optimizer.step();
            losses.Add(output.Loss.item<float>());
        }
        Assert.All(losses, l => Assert.True(float.IsFinite(l)));
        Assert.True(losses[^1] < 0.7 * losses[0], $"loss {losses[0]:g4} -> {losses[^1]:g4}");
    }

    [Fact]
    public void ExportedEncoderLoadsIntoAVisionTransformerWithDinoNames()
    {
        torch.manual_seed(4);
        using var model = new MaskedAutoencoder(Tiny());
        var teacher = MaeEncoderExport.ExtractTeacher(model);
        Assert.Equal(PosEmbedKind.SinCos, teacher.Config.PosEmbed);
        Assert.Contains("cls_token", teacher.StateDict.Keys);
        Assert.Contains("pos_embed", teacher.StateDict.Keys);
        Assert.Contains("patch_embed.proj.weight", teacher.StateDict.Keys);
        Assert.Contains("blocks.1.mlp.fc2.weight", teacher.StateDict.Keys);
        Assert.Contains("norm.bias", teacher.StateDict.Keys);
        Assert.DoesNotContain(teacher.StateDict.Keys, k => k.Contains("decoder") || k.Contains("mask_token"));

        using var vit = new VisionTransformer(teacher.Config);
        Assert.Equal(vit.state_dict().Keys.Order(), teacher.StateDict.Keys.Order());
        using (no_grad())
            foreach (var (name, t) in vit.state_dict()) t.copy_(teacher.StateDict[name]);
        model.eval();
        vit.eval();
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var x = randn(2, 3, 16, 16);
        Assert.True(vit.forward(x).allclose(model.Encoder.forward(x), rtol: 1e-6, atol: 1e-6));
        // Copies: later training of the MAE does not move the teacher.
        model.Encoder.ClsToken.add_(1);
        Assert.False(teacher.StateDict["cls_token"].equal(model.Encoder.ClsToken).all().item<bool>());
        foreach (var t in teacher.StateDict.Values) t.Dispose();
    }

    [Fact]
    public void DecoderPresetsFollowEncoderWidth()
    {
        var b = MaeConfig.For(VitPresets.Get("vit_base_patch16"));
        Assert.Equal((512, 8, 16), (b.DecoderEmbedDim, b.DecoderDepth, b.DecoderNumHeads));
        Assert.Equal(PosEmbedKind.SinCos, b.Encoder.PosEmbed);
        var s = MaeConfig.For(VitPresets.Get("vit_small_patch16"));
        Assert.Equal((256, 4, 8), (s.DecoderEmbedDim, s.DecoderDepth, s.DecoderNumHeads));
        var t = MaeConfig.For(VitPresets.Get("vit_tiny_patch16") with { ImageSize = 32, PatchSize = 4 });
        Assert.Equal((128, 2, 4), (t.DecoderEmbedDim, t.DecoderDepth, t.DecoderNumHeads));
        Assert.Equal(0.75, t.MaskRatio);
        Assert.True(t.NormPixLoss);
        Assert.Equal(16, t.LenKeep);          // 64 patches, keep int(64 x 0.25)
        t.Validate();
    }

    [Theory]
    [InlineData(16, 1, 3, 0.75, "decoder heads")]
    [InlineData(18, 1, 2, 0.75, "divisible by 4")]
    [InlineData(16, 1, 2, 1.0, "mask ratio")]
    [InlineData(16, 1, 2, 0.99, "no visible patch")]
    [InlineData(16, 0, 2, 0.75, "positive")]
    public void InvalidConfigsAreRejectedWithTheSetting(int decDim, int decDepth, int decHeads, double ratio, string expected)
    {
        var cfg = Tiny() with { DecoderEmbedDim = decDim, DecoderDepth = decDepth, DecoderNumHeads = decHeads, MaskRatio = ratio };
        var ex = Assert.Throws<ArgumentException>(() => cfg.Validate());
        Assert.Contains(expected, ex.Message);
        var learnable = Tiny() with { Encoder = Tiny().Encoder with { PosEmbed = PosEmbedKind.Learnable } };
        Assert.Contains("sin-cos", Assert.Throws<ArgumentException>(() => learnable.Validate()).Message);
    }

    [Theory]
    [InlineData("teacher.safetensors")]
    [InlineData("teacher.pth")]
    public void SavedTeacherReadsBackAsTheEncoder(string file)
    {
        torch.manual_seed(9);
        using var model = new MaskedAutoencoder(Tiny());
        string dir = Directory.CreateTempSubdirectory("maeteacher").FullName;
        string path = Path.Combine(dir, file);
        MaeEncoderExport.SaveTeacher(model, path);
        using var read = AttnDistill.Checkpoints.CheckpointReader.Read(path);
        if (file.EndsWith(".safetensors")) Assert.Equal(model.Config.Encoder, read.Config);
        var encoder = model.Encoder.state_dict();
        Assert.Equal(encoder.Keys.Order(), read.Tensors.Keys.Order());
        foreach (var (k, t) in encoder) Assert.True(t.equal(read.Tensors[k]).all().item<bool>(), k);
        Directory.Delete(dir, recursive: true);
    }

    [Fact]
    public void ConfigJsonRoundTrips()
    {
        var cfg = MaeConfig.For(VitPresets.Get("vit_tiny_patch16") with { ImageSize = 32, PatchSize = 4 }) with { MaskRatio = 0.6, NormPixLoss = false };
        Assert.Equal(cfg, MaeConfigJson.Deserialize(MaeConfigJson.Serialize(cfg)));
        Assert.Contains("\"SinCos\"", MaeConfigJson.Serialize(cfg));
        Assert.Throws<ArgumentException>(() => MaeConfigJson.Deserialize("{\"MaskRatio\": \"x\"}"));
    }

    [Fact]
    public void ForwardLeavesOnlyItsResultsInTheCallersScope()
    {
        torch.manual_seed(12);
        using var model = new MaskedAutoencoder(Tiny());
        using var imgs = randn(2, 3, 16, 16);
        using var scope = NewDisposeScope();
        var output = model.Forward(imgs);
        Assert.Equal(3, scope.DisposablesCount);                                // loss, pred, mask
        var enc = model.ForwardEncoder(imgs);
        Assert.Equal(6, scope.DisposablesCount);                                // + latent, mask, ids_restore
        model.ForwardDecoder(enc.Latent, enc.IdsRestore);
        Assert.Equal(7, scope.DisposablesCount);
    }
}
