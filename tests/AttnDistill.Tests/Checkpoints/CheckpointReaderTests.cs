using System.Collections;
using AttnDistill.Checkpoints;
using AttnDistill.Models;
using Xunit;
using static TorchSharp.torch;

namespace AttnDistill.Tests.Checkpoints;

public class CheckpointReaderTests
{
    static string Temp(string name) => Path.Combine(Directory.CreateTempSubdirectory("ckpt").FullName, name);

    [Fact]
    public void EveryFormatOfAModelGivesTheSameTensorsInTimmOrder()
    {
        using var plain = CheckpointReader.Read(VitFixtures.Path("vit_a.pth"));
        using var dino = CheckpointReader.Read(VitFixtures.Path("vit_a_dino.pth"));
        using var st = CheckpointReader.Read(VitFixtures.Path("vit_a.safetensors"));
        Assert.Equal(CheckpointFormat.PyTorchZip, plain.Format);
        Assert.Equal(CheckpointFormat.Safetensors, st.Format);
        var order = VitStateDictKeys.ExpectedShapes(VitFixtures.Config("vit_a")).Select(e => e.Name).ToList();
        Assert.Equal(order, plain.Tensors.Keys.ToList());
        foreach (var other in new[] { dino, st })
        {
            Assert.Equal(order, other.Tensors.Keys.ToList());
            foreach (var (k, t) in plain.Tensors) Assert.True(t.equal(other.Tensors[k]).all().item<bool>(), k);
        }
    }

    [Fact]
    public void DinoCheckpointUsesTeacherDropsHeadsAndToleratesNonTensors()
    {
        using var c = CheckpointReader.Read(VitFixtures.Path("vit_a_dino.pth"));
        Assert.Equal("teacher", c.WrapperKey);
        Assert.Contains("module.head.mlp.0.weight", c.IgnoredKeys);
        Assert.DoesNotContain(c.Tensors.Keys, k => k.Contains("head") || k.StartsWith("module"));
        Assert.Contains("teacher", c.Summary());

        // The student differs in cls_token only: an explicit key selects it.
        using var s = CheckpointReader.Read(VitFixtures.Path("vit_a_dino.pth"), "student");
        Assert.Equal(1f, (s.Tensors["cls_token"] - c.Tensors["cls_token"]).mean().item<float>(), 5);
    }

    [Fact]
    public void WholePickleKeepsEpochArgsAndNumpyScalarWithoutExecutingAnything()
    {
        var root = CheckpointReader.ReadPickle(VitFixtures.Path("vit_a_dino.pth"));
        Assert.Equal(3, Convert.ToInt32(root["epoch"]));
        Assert.IsType<OpaquePythonObject>(root["best_knn"]);
        Assert.IsAssignableFrom<IDictionary>(root["args"]);
        using var c = CheckpointReader.Extract(root, "mem", CheckpointFormat.PyTorchZip, null, null);
        Assert.Equal(2 + 2 + 2 * 12 + 2, c.Tensors.Count);
    }

    [Fact]
    public void MaeCheckpointDropsDecoderAndMaskToken()
    {
        using var c = CheckpointReader.Read(VitFixtures.Path("vit_b_mae.pth"));
        Assert.Equal("model", c.WrapperKey);
        Assert.Contains("mask_token", c.IgnoredKeys);
        Assert.Contains("decoder_pred.weight", c.IgnoredKeys);
        Assert.Contains("decoder_pos_embed", c.IgnoredKeys);
        Assert.DoesNotContain(c.Tensors.Keys, k => k.StartsWith("decoder") || k == "mask_token");
    }

    static Hashtable Backbone(string prefix = "")
    {
        var cfg = new VitConfig { ImageSize = 8, PatchSize = 4, EmbedDim = 8, Depth = 1, NumHeads = 2 };
        var h = new Hashtable();
        foreach (var (name, shape) in VitStateDictKeys.ExpectedShapes(cfg)) h[prefix + name] = zeros(shape);
        return h;
    }

    [Theory]
    [InlineData("state_dict", "module.")]
    [InlineData("model", "encoder.")]
    [InlineData("student", "module.backbone.")]
    [InlineData("state_dict", "_orig_mod.")]
    public void WrappersAndPrefixesAreUndone(string wrapper, string prefix)
    {
        var root = new Hashtable { [wrapper] = Backbone(prefix), ["epoch"] = 5, ["optimizer"] = new Hashtable { ["state"] = new Hashtable() } };
        using var c = CheckpointReader.Extract(root, "mem", CheckpointFormat.PyTorchZip, null, null);
        Assert.Equal(wrapper, c.WrapperKey);
        Assert.Equal(18, c.Tensors.Count);
        Assert.Equal("cls_token", c.Tensors.Keys.First());
        Assert.Equal("norm.bias", c.Tensors.Keys.Last());
    }

    [Fact]
    public void NestedWrappersAreFollowed()
    {
        var root = new Hashtable { ["state_dict"] = new Hashtable { ["model"] = Backbone() } };
        using var c = CheckpointReader.Extract(root, "mem", CheckpointFormat.PyTorchZip, null, null);
        Assert.Equal("state_dict/model", c.WrapperKey);
    }

    [Fact]
    public void NoBackboneNamesTheKeysAndTheWrappers()
    {
        var root = new Hashtable { ["ema"] = Backbone(), ["epoch"] = 1 };
        var ex = Assert.Throws<CheckpointFormatException>(() => CheckpointReader.Extract(root, "x.pth", CheckpointFormat.PyTorchZip, null, null));
        Assert.Contains("no ViT backbone tensors", ex.Message);
        Assert.Contains("ema", ex.Message);
        using var c = CheckpointReader.Extract(new Hashtable { ["ema"] = Backbone() }, "x.pth", CheckpointFormat.PyTorchZip, "ema", null);
        Assert.Equal(18, c.Tensors.Count);
        var missing = Assert.Throws<CheckpointFormatException>(() => CheckpointReader.Extract(new Hashtable { ["ema"] = Backbone() }, "x.pth", CheckpointFormat.PyTorchZip, "teacher", null));
        Assert.Contains("'teacher'", missing.Message);
    }

    [Fact]
    public void UnsupportedBackboneTensorsFailInsteadOfBeingDropped()
    {
        var sd = Backbone();
        sd["blocks.0.ls1.gamma"] = ones(8);
        var ex = Assert.Throws<CheckpointFormatException>(() => CheckpointReader.Extract(sd, "x.pth", CheckpointFormat.PyTorchZip, null, null));
        Assert.Contains("blocks.0.ls1.gamma", ex.Message);
    }

    [Fact]
    public void LegacyFileSaysHowToConvert()
    {
        Assert.Equal(CheckpointFormat.PyTorchLegacy, CheckpointReader.DetectFormat(VitFixtures.Path("legacy.pth")));
        var ex = Assert.Throws<CheckpointFormatException>(() => CheckpointReader.Read(VitFixtures.Path("legacy.pth")));
        Assert.Contains("legacy", ex.Message);
        Assert.Contains("_use_new_zipfile_serialization=True", ex.Message);
    }

    [Fact]
    public void TruncatedZipAndUnknownFilesFailClearly()
    {
        string src = VitFixtures.Path("vit_a.pth");
        string cut = Temp("cut.pth");
        var bytes = File.ReadAllBytes(src);
        File.WriteAllBytes(cut, bytes[..(bytes.Length / 2)]);
        var ex = Assert.Throws<CheckpointFormatException>(() => CheckpointReader.Read(cut));
        Assert.Contains("truncated", ex.Message);

        string junk = Temp("junk.bin");
        File.WriteAllText(junk, "hello world, not a checkpoint");
        var ex2 = Assert.Throws<CheckpointFormatException>(() => CheckpointReader.Read(junk));
        Assert.Contains("not a PyTorch zip checkpoint nor a safetensors file", ex2.Message);

        Assert.Throws<FileNotFoundException>(() => CheckpointReader.Read(Temp("absent.pth")));
    }

    [Fact]
    public void TruncatedSafetensorsFailsClearly()
    {
        var bytes = File.ReadAllBytes(VitFixtures.Path("vit_b.safetensors"));
        string cut = Temp("cut.safetensors");
        File.WriteAllBytes(cut, bytes[..(bytes.Length - 100)]);
        var ex = Assert.Throws<CheckpointFormatException>(() => CheckpointReader.Read(cut));
        Assert.Contains("truncated", ex.Message);
    }

    [Fact]
    public void AGlobalPoolClassifierIsNamedWithWhatToPassInstead()
    {
        // MAE's and timm's fine-tuned layout, as our own finetune writes it: fc_norm.* and head.*, no norm.*.
        string path = Temp("finetuned.pth");
        using (var vit = new VisionTransformer(VitFixtures.Config("vit_a")))
        using (var model = new AttnDistill.Evaluation.FinetuneModel(vit, 10, globalPool: true))
        {
            var state = model.ExportStateDict();
            Assert.Contains("fc_norm.weight", state.Keys);
            Assert.DoesNotContain("norm.weight", state.Keys);
            BackboneExport.SavePth(state, path);
        }
        var ex = Assert.Throws<CheckpointFormatException>(() => CheckpointReader.Read(path));
        Assert.Contains("fine-tuned with global pooling", ex.Message);
        Assert.Contains("pass the pre-trained checkpoint", ex.Message);
        Assert.DoesNotContain("\n", ex.Message);
    }
}
