using System.CommandLine;
using AttnDistill.Checkpoints;
using AttnDistill.Cli.Commands;
using AttnDistill.Export;
using AttnDistill.Models;
using AttnDistill.Tests.TestSupport;
using Xunit;
using static TorchSharp.torch;

namespace AttnDistill.Tests.Export;

/// <summary>`attndistill export` from a checkpoint file: the three formats, --image-size, --head, and the errors.</summary>
public class ExportJobTests : IDisposable
{
    static readonly VitConfig Tiny = new() { ImageSize = 32, PatchSize = 8, EmbedDim = 48, Depth = 2, NumHeads = 3 };
    readonly string _dir = Directory.CreateTempSubdirectory("attndistill-export-").FullName;
    readonly SingleTorchThread _thread = new();
    AttnDistill.Runs.RunContext Context => AttnDistill.Runs.RunContext.Cpu(_dir);

    public void Dispose()
    {
        _thread.Dispose();
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }

    string File_(string name) => Path.Combine(_dir, name);

    (VisionTransformer Model, string Path) Checkpoint()
    {
        var model = OnnxExportTests.Perturbed(Tiny, seed: 11);
        string path = File_("backbone.safetensors");
        BackboneExport.SaveSafetensors(model, path, Tiny);
        return (model, path);
    }

    static Tensor Input(int batch, int size)
    {
        manual_seed(12);
        return randn(batch, 3, size, size);
    }

    [Fact]
    public void OnnxFileFromCheckpointMatchesTheModel()
    {
        var (model, ckpt) = Checkpoint();
        using var _m = model;
        string onnx = File_("out/student.onnx");
        var result = ExportJob.Run(new ExportRequest { Checkpoint = ckpt, Out = onnx, Format = ExportFormat.Onnx, Onnx = new() { IncludeAttention = true } }, Context);
        Assert.Equal(new FileInfo(onnx).Length, result.Bytes);
        Assert.False(File.Exists(AtomicFile.TempPathFor(onnx)));
        Assert.Equal(new[] { "feature [batch, 48]", "attention [batch, 3, 17]" }, result.Outputs);

        using var runner = new OnnxRunner(onnx);
        using var scope = NewDisposeScope();
        var x = Input(3, 32);
        var got = runner.Run(x);
        using var _ = no_grad();
        TensorAssert.Close(model.forward(x), got["feature"], "feature", 0, 1e-4);
        TensorAssert.Close(model.GetLastSelfAttention(x), got["attention"], "attention", 0, 1e-4);
    }

    [Fact]
    public void ImageSizeOptionExportsTheResampledPositionTable()
    {
        var (model, ckpt) = Checkpoint();
        using var _m = model;
        string onnx = File_("s48.onnx");
        var result = ExportJob.Run(new ExportRequest { Checkpoint = ckpt, Out = onnx, Format = ExportFormat.Onnx, ImageSize = 48 }, Context);
        Assert.Equal(48, result.Config.ImageSize);
        using var runner = new OnnxRunner(onnx);
        using var scope = NewDisposeScope();
        var x = Input(2, 48);
        // The trained model on a 48 px input interpolates its 4x4 table to 6x6 the same way (DINO's rule).
        using var _ = no_grad();
        TensorAssert.Close(model.forward(x), runner.Run(x)["feature"], "feature at 48 px", 0, 1e-4);
    }

    [Theory]
    [InlineData(ExportFormat.Safetensors, "half.safetensors")]
    [InlineData(ExportFormat.Pth, "half.pth")]
    public void HalfStoresFloat16WeightsThatLoadBackAsTheModel(ExportFormat format, string name)
    {
        var (model, ckpt) = Checkpoint();
        using var _m = model;
        string full = File_("full-" + name), half = File_(name);
        ExportJob.Run(new ExportRequest { Checkpoint = ckpt, Out = full, Format = format }, Context);
        var result = ExportJob.Run(new ExportRequest { Checkpoint = ckpt, Out = half, Format = format, Half = true }, Context);
        Assert.Contains("float16", Assert.Single(result.Outputs));
        Assert.InRange(new FileInfo(half).Length, 0, new FileInfo(full).Length * 0.6);
        using (var read = CheckpointReader.Read(half)) Assert.All(read.Tensors.Values, t => Assert.Equal(ScalarType.Float16, t.dtype));
        var (loaded, _) = VitCheckpointLoader.Load(half, new VitInferenceOptions { NumHeads = Tiny.NumHeads });
        using (loaded)
        {
            loaded.eval();
            model.eval();
            using var scope = NewDisposeScope();
            using var noGrad = no_grad();
            var x = Input(2, 32);
            TensorAssert.Close(model.forward(x), loaded.forward(x), "float16 weights", 0, 1e-2);
        }
        Assert.Contains("--half", Assert.Throws<ArgumentException>(() => ExportJob.Run(new ExportRequest { Checkpoint = ckpt, Out = File_("x.onnx"), Format = ExportFormat.Onnx, Half = true }, Context)).Message);
    }

    /// <summary>Export at another size stores the table knn and distill load at that size: the file's source rule (or the one asked for).</summary>
    [Theory]
    [InlineData(null)]
    [InlineData(PosEmbedRule.Mae)]
    [InlineData(PosEmbedRule.Timm)]
    public void AnotherImageSizeExportsTheTableEveryOtherCommandLoads(PosEmbedRule? rule)
    {
        string source = Path.Combine(AppContext.BaseDirectory, "fixtures", "posembed", "posembed_vit.pth");
        string outPath = File_($"at32-{rule}.safetensors");
        var inference = new VitInferenceOptions { NumHeads = 4, Resampling = rule };
        ExportJob.Run(new ExportRequest { Checkpoint = source, Out = outPath, Format = ExportFormat.Safetensors, ImageSize = 32, Inference = inference }, Context);
        using var exported = CheckpointReader.Read(outPath);
        var (loaded, cfg) = VitCheckpointLoader.Load(source, inference, imageSize: 32);
        using (loaded)
        {
            Assert.Equal(4, cfg.GridSize);
            Assert.True(exported.Tensors["pos_embed"].equal(loaded.PosEmbed).all().item<bool>(), $"export and the loader disagree under {rule?.ToString() ?? "the source's rule"}");
        }
    }

    [Theory]
    [InlineData(ExportFormat.Pth, "backbone.pth")]
    [InlineData(ExportFormat.Safetensors, "backbone_copy.safetensors")]
    public void StateDictFormatsLoadBackToTheSameModel(ExportFormat format, string name)
    {
        var (model, ckpt) = Checkpoint();
        using var _m = model;
        string path = File_(name);
        ExportJob.Run(new ExportRequest { Checkpoint = ckpt, Out = path, Format = format }, Context);
        var (loaded, cfg) = VitCheckpointLoader.Load(path, new VitInferenceOptions { NumHeads = Tiny.NumHeads });
        using var _l = loaded;
        Assert.Equal(Tiny.Depth, cfg.Depth);
        loaded.eval();
        using var scope = NewDisposeScope();
        var x = Input(2, 32);
        using var _ = no_grad();
        TensorAssert.Close(model.forward(x), loaded.forward(x), $"{format} reloaded", 0, 0);
    }

    [Fact]
    public void WrongInputsFailWithMessagesThatNameTheFix()
    {
        var (model, ckpt) = Checkpoint();
        model.Dispose();

        var missing = Assert.Throws<FileNotFoundException>(() =>
            ExportJob.Run(new ExportRequest { Checkpoint = File_("nope.pth"), Out = File_("a.onnx"), Format = ExportFormat.Onnx }, Context));
        Assert.Contains("--checkpoint", missing.Message);
        Assert.Contains("not found", missing.Message);

        var unknown = Assert.Throws<ArgumentException>(() => ExportFormats.Resolve("tflite", "a.onnx"));
        Assert.Contains("onnx, pth, safetensors", unknown.Message);
        Assert.Throws<ArgumentException>(() => ExportFormats.Resolve(null, "model.bin"));
        Assert.Equal(ExportFormat.Safetensors, ExportFormats.Resolve(null, "x/model.safetensors"));

        // A path under a regular file cannot be created (root ignores permission bits, so use that).
        string blocker = File_("plain.txt");
        File.WriteAllText(blocker, "x");
        var notWritable = Assert.Throws<IOException>(() =>
            ExportJob.Run(new ExportRequest { Checkpoint = ckpt, Out = Path.Combine(blocker, "m.onnx"), Format = ExportFormat.Onnx }, Context));
        Assert.Contains("cannot write there", notWritable.Message);
        var folder = Assert.Throws<IOException>(() =>
            ExportJob.Run(new ExportRequest { Checkpoint = ckpt, Out = _dir, Format = ExportFormat.Onnx }, Context));
        Assert.Contains("is a folder", folder.Message);

        var headWithPth = Assert.Throws<ArgumentException>(() =>
            ExportJob.Run(new ExportRequest { Checkpoint = ckpt, Out = File_("b.pth"), Format = ExportFormat.Pth, HeadPath = ckpt }, Context));
        Assert.Contains("--format onnx", headWithPth.Message);

        var headMissing = Assert.Throws<FileNotFoundException>(() =>
            ExportJob.Run(new ExportRequest { Checkpoint = ckpt, Out = File_("c.onnx"), Format = ExportFormat.Onnx, HeadPath = File_("head.pth") }, Context));
        Assert.Contains("--head", headMissing.Message);

        using var wide = OnnxExportTests.ProbeHead(64, 5, seed: 13);
        string headPath = File_("wide_head.safetensors");
        SafetensorsFile.Write(headPath, wide.state_dict().Where(kv => !kv.Key.EndsWith("num_batches_tracked")));
        var mismatch = Assert.Throws<ArgumentException>(() =>
            ExportJob.Run(new ExportRequest { Checkpoint = ckpt, Out = File_("d.onnx"), Format = ExportFormat.Onnx, HeadPath = headPath }, Context));
        Assert.Contains("64 features", mismatch.Message);
        Assert.False(File.Exists(File_("d.onnx")));
    }

    [Fact]
    public void CliExportsOnnxWithHeadAndRejectsBadArguments()
    {
        var (model, ckpt) = Checkpoint();
        using var _m = model;
        using var probe = OnnxExportTests.ProbeHead(Tiny.EmbedDim, 4, seed: 14);
        string headPath = File_("head.pth");
        BackboneExport.SavePth(probe.state_dict(), headPath);
        string onnx = File_("cli/student.onnx");

        int code = Invoke("export", "--checkpoint", ckpt, "--out", onnx, "--attention", "--head", headPath);
        Assert.Equal(0, code);
        using (var runner = new OnnxRunner(onnx))
        {
            Assert.Equal(new[] { "feature", "attention", "logits" }, runner.OutputNames);
            using var scope = NewDisposeScope();
            var x = Input(5, 32);
            var got = runner.Run(x);
            using var _ = no_grad();
            TensorAssert.Close(probe.forward(model.forward(x)), got["logits"], "logits", 0, 1e-4);
        }

        Assert.NotEqual(0, Invoke("export", "--checkpoint", ckpt, "--out", File_("x.onnx"), "--format", "tflite"));
        Assert.Equal(2, Invoke("export", "--checkpoint", File_("missing.pth"), "--out", File_("y.onnx")));
        Assert.Equal(2, Invoke("export", "--checkpoint", ckpt, "--out", File_("z.bin")));
    }

    static int Invoke(params string[] args)
    {
        var root = new RootCommand { ExportCommand.Create() };
        return root.Parse(args).Invoke(new InvocationConfiguration { Output = TextWriter.Null, Error = TextWriter.Null });
    }
}
