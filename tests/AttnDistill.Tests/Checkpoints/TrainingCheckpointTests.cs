using AttnDistill.Checkpoints;
using AttnDistill.Models;
using Xunit;
using static TorchSharp.torch;

namespace AttnDistill.Tests.Checkpoints;

public class TrainingCheckpointTests
{
    static string Temp(string name) => Path.Combine(Directory.CreateTempSubdirectory("trainckpt").FullName, name);

    static TrainingCheckpoint Make(int epoch, float fill = 1f) => new()
    {
        Model = { ["cls_token"] = full(1, 1, 8, fill), ["pos_embed"] = arange(40, dtype: ScalarType.Float32).reshape(1, 5, 8) },
        ModelConfig = new VitConfig { ImageSize = 8, PatchSize = 4, EmbedDim = 8, Depth = 1, NumHeads = 2 },
        Config = "model: vit_tiny\nlr: 5.0e-4   # ünïcode ok\n",
        Epoch = epoch,
        Step = 1200L * epoch,
        Sections =
        {
            [TrainingCheckpoint.OptimizerSection] = new CheckpointSection
            {
                Tensors = { ["state.0.exp_avg"] = randn(3, 4), ["state.0.step"] = tensor(17L) },
                Json = """{"kind":"adamw","param_groups":[{"lr":0.0005,"weight_decay":0.04}]}""",
            },
            [TrainingCheckpoint.SchedulerSection] = new CheckpointSection { Json = """{"position":1200}""" },
            [TrainingCheckpoint.RngSection] = TrainingCheckpoint.CaptureTorchRng(),
        },
    };

    static void AssertSame(TrainingCheckpoint a, TrainingCheckpoint b)
    {
        Assert.Equal(a.Epoch, b.Epoch);
        Assert.Equal(a.Step, b.Step);
        Assert.Equal(a.Config, b.Config);
        Assert.Equal(a.ModelConfig, b.ModelConfig);
        Assert.Equal(a.Model.Keys, b.Model.Keys);
        foreach (var (k, t) in a.Model) Assert.True(t.equal(b.Model[k]).all().item<bool>(), k);
        Assert.Equal(a.Sections.Keys.Order(), b.Sections.Keys.Order());
        foreach (var (name, s) in a.Sections)
        {
            Assert.Equal(s.Json, b.Sections[name].Json);
            Assert.Equal(s.Tensors.Keys, b.Sections[name].Tensors.Keys);
            foreach (var (k, t) in s.Tensors)
            {
                Assert.Equal(t.dtype, b.Sections[name].Tensors[k].dtype);
                Assert.True(t.equal(b.Sections[name].Tensors[k]).all().item<bool>(), name + "/" + k);
            }
        }
    }

    [Fact]
    public void SaveAndLoadGiveTheSameState()
    {
        string path = Temp("last.ckpt");
        using var a = Make(3);
        a.Save(path);
        using var b = TrainingCheckpoint.Load(path);
        AssertSame(a, b);
        Assert.False(File.Exists(AtomicFile.TempPathFor(path)));
    }

    [Fact]
    public void ReaderTakesTheModelAndItsConfigFromATrainingCheckpoint()
    {
        string path = Temp("last.safetensors");
        using (var a = Make(1)) a.Save(path);
        using var c = CheckpointReader.Read(path);
        Assert.Equal(TrainingCheckpoint.ModelSection, c.WrapperKey);
        Assert.Equal(new[] { "cls_token", "pos_embed" }, c.Tensors.Keys);
        Assert.Equal(8, c.Config!.EmbedDim);
    }

    [Fact]
    public void AFailedSaveLeavesThePreviousFileIntact()
    {
        string path = Temp("last.ckpt");
        using var first = Make(1);
        first.Save(path);
        byte[] before = File.ReadAllBytes(path);

        using var second = Make(2, fill: 5f);
        var ex = Assert.Throws<IOException>(() => AtomicFile.Write(path, s => second.WriteTo(new FailingStream(s, failAfter: 300))));
        Assert.Contains("injected", ex.Message);
        Assert.Equal(before, File.ReadAllBytes(path));
        Assert.False(File.Exists(AtomicFile.TempPathFor(path)));
        using var loaded = TrainingCheckpoint.Load(path);
        AssertSame(first, loaded);

        // A writer callback that dies after writing part of the data does the same.
        Assert.Throws<InvalidOperationException>(() => AtomicFile.Write(path, s => { s.Write(new byte[100]); throw new InvalidOperationException("killed"); }));
        Assert.Equal(before, File.ReadAllBytes(path));

        // And a successful save replaces it.
        second.Save(path);
        using var now = TrainingCheckpoint.Load(path);
        Assert.Equal(2, now.Epoch);
    }

    [Theory]
    [InlineData(4)]      // inside the length field
    [InlineData(50)]     // inside the header
    [InlineData(-10)]    // inside the data
    public void TruncatedFileFailsWithAClearMessage(int keep)
    {
        string path = Temp("last.ckpt");
        using (var a = Make(1)) a.Save(path);
        var bytes = File.ReadAllBytes(path);
        File.WriteAllBytes(path, bytes[..(keep >= 0 ? keep : bytes.Length + keep)]);
        var ex = Assert.Throws<CheckpointFormatException>(() => TrainingCheckpoint.Load(path));
        Assert.Contains("truncated", ex.Message);
        Assert.Contains(path, ex.Message);
    }

    [Fact]
    public void FlippedDataByteFailsTheChecksum()
    {
        string path = Temp("last.ckpt");
        using (var a = Make(1)) a.Save(path);
        var bytes = File.ReadAllBytes(path);
        bytes[^3] ^= 0x40;
        File.WriteAllBytes(path, bytes);
        var ex = Assert.Throws<CheckpointFormatException>(() => TrainingCheckpoint.Load(path));
        Assert.Contains("checksum", ex.Message);
        Assert.Contains("corrupt", ex.Message);
    }

    [Fact]
    public void CorruptHeaderAndForeignFilesAreRejected()
    {
        string path = Temp("last.ckpt");
        using (var a = Make(1)) a.Save(path);
        var bytes = File.ReadAllBytes(path);
        bytes[8] = (byte)'#';
        File.WriteAllBytes(path, bytes);
        Assert.Contains("not valid JSON", Assert.Throws<CheckpointFormatException>(() => TrainingCheckpoint.Load(path)).Message);

        var foreign = Assert.Throws<CheckpointFormatException>(() => TrainingCheckpoint.Load(VitFixtures.Path("vit_b.safetensors")));
        Assert.Contains("not an AttnDistill training checkpoint", foreign.Message);
    }

    [Fact]
    public void BadSectionsAreRefusedAtSave()
    {
        using var a = new TrainingCheckpoint { Sections = { ["a/b"] = new CheckpointSection() } };
        Assert.Throws<ArgumentException>(() => a.WriteTo(Stream.Null));
        using var b = new TrainingCheckpoint { Sections = { ["opt"] = new CheckpointSection { Json = "{not json" } } };
        Assert.Throws<ArgumentException>(() => b.WriteTo(Stream.Null));
    }

    [Fact]
    public void DirectoryIsSyncedOnLinux()
    {
        if (OperatingSystem.IsLinux()) Assert.True(AtomicFile.TrySyncDirectory(Path.GetTempPath()));
    }

    [Fact]
    public void TorchRngStateIsRestored()
    {
        var rng = TrainingCheckpoint.CaptureTorchRng();
        using var x = randn(5);
        TrainingCheckpoint.RestoreTorchRng(rng);
        using var y = randn(5);
        Assert.True(x.equal(y).all().item<bool>());
    }
}
