using System.Diagnostics;
using AttnDistill.Checkpoints;
using AttnDistill.Data;
using AttnDistill.Data.Transforms;
using AttnDistill.Evaluation;
using AttnDistill.Tests.TestSupport;
using Xunit;
using Xunit.Abstractions;
using static TorchSharp.torch;
using DataLoader = AttnDistill.Data.DataLoader;

namespace AttnDistill.Tests.Reliability;

/// <summary>
/// The second round of adversarial inputs (hostile data folders, images, checkpoints, recipes):
/// each test failed on the code before its fix. Through the real CLI entry point where a user
/// meets it (exit code 2, one "error:" line naming the file or flag, no stack trace).
/// </summary>
public class HostileInputTests(BadConfigFixture f, ITestOutputHelper log) : IClassFixture<BadConfigFixture>
{
    static string Tmp(string name) => Directory.CreateTempSubdirectory(name).FullName;

    void AssertOneLineError((int Code, string Output) r, params string[] words) => CliErrors.AssertOneLine(log, r, words);

    string[] DistillArgs(string data, string outDir, params string[] more) => new[]
    {
        "distill", "--data", data, "--teacher", f.Teacher, "--student", "vit_tiny_patch16", "--student-patch", "7", "--student-depth", "1",
        "--student-heads", "2", "--student-dim", "32", "--image-size", "28", "--proj-layers", "1", "--epochs", "1", "--warmup-epochs", "0",
        "--batch-size", "4", "--workers", "1", "--threads", "1", "--out", outDir,
    }.Concat(more).ToArray();

    // ---- case 2: image headers that lie -------------------------------------------------------

    [Fact]
    public void Case2_ALyingPngHeaderIsRefusedBeforeAnyPixelMemoryNamingTheFileAndTheFlag()
    {
        string path = Path.Combine(Tmp("bomb"), "bomb.png");
        File.WriteAllBytes(path, HostileFiles.LyingPng());
        var ex = Assert.ThrowsAny<IOException>(() => ImageDecoder.DecodeFile(path));
        Assert.Contains(path, ex.Message);
        Assert.Contains("--max-image-pixels", ex.Message);
    }

    [Fact]
    public void Case2_DistillWithABombInTheDataStopsWithOneLineNamingIt()
    {
        string data = HostileFiles.Folder(root => File.WriteAllBytes(Path.Combine(root, "train", "a", "9.png"), HostileFiles.LyingPng()));
        string outDir = Path.Combine(Tmp("bomb-run"), "run");
        AssertOneLineError(BadConfigTests.RunCli(DistillArgs(data, outDir)), "9.png", "--max-image-pixels");
    }

    [Fact]
    public void Case2_DataInspectAndDataPackRefuseTheBomb()
    {
        string data = HostileFiles.Folder(root => File.WriteAllBytes(Path.Combine(root, "train", "b", "big.png"), HostileFiles.LyingPng()));
        AssertOneLineError(BadConfigTests.RunCli(new[] { "data", "inspect", "--data", data }), "big.png", "--max-image-pixels");
        AssertOneLineError(BadConfigTests.RunCli(new[] { "data", "inspect", "--data", data, "--full-decode" }), "big.png", "--max-image-pixels");
        string packed = Path.Combine(Tmp("bomb-pack"), "lmdb");
        AssertOneLineError(BadConfigTests.RunCli(new[] { "data", "pack", "--data", data, "--out", packed }), "big.png", "--max-image-pixels");
        Assert.False(File.Exists(Path.Combine(packed, "train.lmdb")));
    }

    [Fact]
    public void Case2_KnnWithABombInTheValSplitStopsWithOneLineNamingIt()
    {
        string data = HostileFiles.Folder(root => File.WriteAllBytes(Path.Combine(root, "test", "a", "0.png"), HostileFiles.LyingPng()));
        var r = BadConfigTests.RunCli(new[] { "knn", "--data", data, "--checkpoint", f.Teacher, "--image-size", "28", "--k", "2", "--batch-size", "4", "--workers", "1", "--out", Path.Combine(Tmp("bomb-knn"), "run") });
        AssertOneLineError(r, "0.png", "--max-image-pixels");
    }

    // ---- case 4: memory amplification ---------------------------------------------------------

    [Fact]
    public void Case4_SafetensorsEntriesSharingOneOffsetAreRefused()
    {
        string path = Path.Combine(Tmp("overlap"), "shared.safetensors");
        var entries = Enumerable.Range(0, 50).Select(i => $"\"t{i}\":{{\"dtype\":\"F32\",\"shape\":[1024],\"data_offsets\":[0,4096]}}");
        HostileFiles.Safetensors(path, "{" + string.Join(",", entries) + "}", new byte[4096]);
        var ex = Assert.Throws<CheckpointFormatException>(() => SafetensorsFile.Read(path));
        Assert.Contains("overlap", ex.Message);
    }

    [Fact]
    public void Case4_ACheckpointArchiveWithCompressedStoragesIsRefusedBeforeInflating()
    {
        string source = Path.Combine(AppContext.BaseDirectory, "fixtures", "reliability", "views.pth");
        string path = Path.Combine(Tmp("deflated"), "deflated.pth");
        HostileFiles.Deflated(source, path);
        var ex = Assert.Throws<CheckpointFormatException>(() => CheckpointReader.ReadPickle(path));
        Assert.Contains("--max-checkpoint-inflate", ex.Message);
    }

    // ---- case 3: FIFOs, devices, walking out of the root --------------------------------------

    [Fact]
    public void Case3_AFifoAsACheckpointIsRefusedWithoutOpeningIt()
    {
        string fifo = HostileFiles.Fifo(Path.Combine(Tmp("fifo"), "teacher.pth"));
        var read = Task.Run(() => Assert.Throws<CheckpointFormatException>(() => CheckpointReader.Read(fifo)));
        Assert.True(read.Wait(TimeSpan.FromSeconds(20)), "reading a FIFO blocked");
        Assert.Contains("FIFO", read.Result.Message);
        var safetensors = Task.Run(() => Assert.Throws<CheckpointFormatException>(() => SafetensorsFile.Read(fifo)));
        Assert.True(safetensors.Wait(TimeSpan.FromSeconds(20)), "reading a FIFO blocked");
        Assert.Throws<CheckpointFormatException>(() => CheckpointReader.Read("/dev/zero"));
    }

    [Fact]
    public void Case3_AFifoNamedAsTheNewestCheckpointIsSkippedByResume()
    {
        string dir = Tmp("fifo-resume");
        HostileFiles.Fifo(Path.Combine(dir, "checkpoint-0002.ckpt"));
        var found = Task.Run(() => AttnDistill.Training.CheckpointFiles.Newest(dir, log.WriteLine));
        Assert.True(found.Wait(TimeSpan.FromSeconds(20)), "looking for checkpoints blocked on a FIFO");
        Assert.Null(found.Result);
    }

    [Fact]
    public void Case3_ALinkOutOfTheDataFolderIsNotWalked()
    {
        string outside = Tmp("outside");
        File.WriteAllBytes(Path.Combine(outside, "x.png"), HostileFiles.Png(4, 4, 8, 2, new byte[4 * 13]));
        string data = HostileFiles.Folder(root => Directory.CreateSymbolicLink(Path.Combine(root, "train", "a", "rootlink"), outside));
        var ex = Assert.Throws<InvalidDataException>(() => DatasetFactory.Open(data, DataSplit.Train));
        Assert.Contains("rootlink", ex.Message);
        AssertOneLineError(BadConfigTests.RunCli(new[] { "data", "inspect", "--data", data }), "rootlink");
    }

    // ---- case 1: labels that shift ------------------------------------------------------------

    [Fact]
    public void Case1_AnExtraClassFolderInTrainOnlyIsRefusedByTheEvaluations()
    {
        string data = HostileFiles.Folder(root => Directory.CreateDirectory(Path.Combine(root, "train", "0-empty")));
        var ex = Assert.Throws<InvalidDataException>(() => EvaluationData.Open(data, LabelSelection.All));
        Assert.Contains("0-empty", ex.Message);
        var r = BadConfigTests.RunCli(new[] { "knn", "--data", data, "--checkpoint", f.Teacher, "--image-size", "28", "--k", "2", "--batch-size", "4", "--workers", "1", "--out", Path.Combine(Tmp("shift-knn"), "run") });
        AssertOneLineError(r, "0-empty");
    }

    [Fact]
    public void Case1_OutInsideTheDataFolderIsRefused()
    {
        string data = HostileFiles.Folder();
        string outDir = Path.Combine(data, "train", "run");
        AssertOneLineError(BadConfigTests.RunCli(DistillArgs(data, outDir)), "--out", "--data");
        Assert.False(File.Exists(Path.Combine(outDir, "log.txt")));
    }

    [Fact]
    public void Case1_ALinkToAFolderAboveIsACycleAndRefused()
    {
        string data = HostileFiles.Folder(root => Directory.CreateSymbolicLink(Path.Combine(root, "train", "a", "up"), ".."));
        var ex = Assert.Throws<InvalidDataException>(() => new ImageFolderDataset(Path.Combine(data, "train")));
        Assert.Contains("cycle", ex.Message);
    }

    [Fact]
    public void Case1_ALinkInsideTheDataFolderIsFollowedAsTorchvisionDoes()
    {
        string data = HostileFiles.Folder(root =>
        {
            Directory.CreateDirectory(Path.Combine(root, "train", "a", "inner"));
            File.Copy(Path.Combine(root, "train", "a", "0.png"), Path.Combine(root, "train", "a", "inner", "s.png"));
            Directory.CreateSymbolicLink(Path.Combine(root, "train", "b", "more"), Path.Combine(root, "train", "a", "inner"));
        });
        var ds = new ImageFolderDataset(Path.Combine(data, "train"));
        Assert.Contains(Enumerable.Range(0, ds.Count), i => ds.ItemName(i).EndsWith(Path.Combine("more", "s.png")));
    }

    // ---- case 10: garbage accepted ------------------------------------------------------------

    [Fact]
    public void Case10_ABoolOrIntegerTeacherIsRefused()
    {
        using var t = new AttnDistill.Models.VisionTransformer(new AttnDistill.Models.VitConfig { ImageSize = 28, PatchSize = 4, EmbedDim = 64, Depth = 1, NumHeads = 4 });
        foreach (var dtype in new[] { ScalarType.Bool, ScalarType.Int8, ScalarType.Byte })
        {
            string path = Path.Combine(Tmp("dtype"), "teacher.safetensors");
            SafetensorsFile.Write(path, t.state_dict().Select(kv => new KeyValuePair<string, Tensor>(kv.Key, kv.Value.to(dtype))));
            var ex = Assert.Throws<CheckpointFormatException>(() => CheckpointReader.Read(path));
            Assert.Contains("floating point", ex.Message);
        }
    }

    [Fact]
    public void Case10_DuplicateSafetensorsKeysAreRefused()
    {
        string path = Path.Combine(Tmp("dup"), "dup.safetensors");
        HostileFiles.Safetensors(path, "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", new byte[8]);
        var ex = Assert.Throws<CheckpointFormatException>(() => SafetensorsFile.Read(path));
        Assert.Contains("twice", ex.Message);
    }

    [Fact]
    public void Case10_AWarmupLongerThanTheRunIsRefused()
    {
        var args = DistillArgs(HostileFiles.Folder(), Path.Combine(Tmp("warm"), "run")).ToList();
        args[args.IndexOf("--warmup-epochs") + 1] = "5";
        AssertOneLineError(BadConfigTests.RunCli(args.ToArray()), "--warmup-epochs");
    }

    // ---- case 11: messages --------------------------------------------------------------------

    [Fact]
    public void Case11_AFolderGivenAsACheckpointIsCalledAFolder()
    {
        string dir = Tmp("dir-ckpt");
        var ex = Assert.Throws<CheckpointFormatException>(() => CheckpointReader.Read(dir));
        Assert.Contains("folder", ex.Message);
    }

    [Fact]
    public void Case11_ASafetensorsHeaderLongerThanTheFileIsCalledTruncated()
    {
        string path = Path.Combine(Tmp("trunc"), "t.safetensors");
        HostileFiles.Safetensors(path, "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}" + new string(' ', 64), new byte[4]);
        var bytes = File.ReadAllBytes(path);
        File.WriteAllBytes(path, bytes[..40]);   // the header claims more than the file has
        var ex = Assert.Throws<CheckpointFormatException>(() => CheckpointReader.Read(path));
        Assert.Contains("truncated", ex.Message);
    }

    [Fact]
    public void Case11_EscapeSequencesInCheckpointKeysDoNotReachTheTerminal()
    {
        string path = Path.Combine(Tmp("esc"), "esc.safetensors");
        HostileFiles.Safetensors(path, "{\"\\u001b]0;pwned\\u0007\\u001b[2J\":{\"dtype\":\"Q9\",\"shape\":[1],\"data_offsets\":[0,4]}}", new byte[4]);
        var r = BadConfigTests.RunCli(new[] { "knn", "--data", HostileFiles.Folder(), "--checkpoint", path, "--image-size", "28", "--out", Path.Combine(Tmp("esc-run"), "run") });
        Assert.Equal(2, r.Code);
        Assert.DoesNotContain('\u001b', r.Output);
        Assert.DoesNotContain('\u0007', r.Output);
    }

    [Fact]
    public void Case11_ANonUtf8ClassFolderIsNamedNotSilent()
    {
        string data = HostileFiles.Folder(root => HostileFiles.MkdirRaw(Path.Combine(root, "train"), new byte[] { 0xff, 0xfe, (byte)'x' }));
        var r = BadConfigTests.RunCli(new[] { "data", "inspect", "--data", data });
        AssertOneLineError(r, "UTF-8");
    }

    // ---- case 13: 16-bit grayscale, TIFF ------------------------------------------------------

    [Fact]
    public void Case13_Sixteen_bitGrayscaleIsClippedAsPilConvertRgb()
    {
        // PIL 9.4: Image.open(16-bit gray PNG) is mode "I"; convert("RGB") clips to 255: [0, 100, 255, 255, 255, 255].
        var img = ImageDecoder.Decode(HostileFiles.Gray16Png(new ushort[] { 0, 100, 255, 256, 1000, 65535 }), "gray16.png");
        Assert.Equal(new byte[] { 0, 100, 255, 255, 255, 255 }, Enumerable.Range(0, 6).Select(i => img.Pixels[3 * i]).ToArray());
        Assert.Equal(img.Pixels[3], img.Pixels[4]);
    }

    [Fact]
    public void Case13_ATruncated16_bitPngIsCountedAsUnreadableNotACrash()
    {
        // PIL: "image file is truncated"; here the loader's unreadable path (skipped, counted, named).
        var png = HostileFiles.Gray16Png(Enumerable.Range(0, 784).Select(i => (ushort)(i * 83)).ToArray());
        string data = HostileFiles.Folder(root => File.WriteAllBytes(Path.Combine(root, "train", "a", "cut16.png"), png[..(png.Length - 30)]));
        var ds = DatasetFactory.Open(data, DataSplit.Train);
        var loader = new DataLoader(ds, TransformPresets.Eval(28), new DataLoaderOptions { BatchSize = 9, Shuffle = false, Workers = 0 });
        foreach (var b in loader.Epoch(0)) b.Dispose();
        Assert.Equal(1, loader.UnreadableCount);
        Assert.Contains("cut16.png", loader.UnreadableItems.Single());
    }

    [Fact]
    public void Case13_TiffFilesAreListedAsTorchvisionDoesAndCountedAsUnreadable()
    {
        string data = HostileFiles.Folder(root => File.WriteAllBytes(Path.Combine(root, "train", "a", "scan.tif"), new byte[] { 0x49, 0x49, 0x2a, 0, 8, 0, 0, 0, 0, 0 }));
        var ds = DatasetFactory.Open(data, DataSplit.Train);
        Assert.Equal(9, ds.Count);
        var loader = new DataLoader(ds, TransformPresets.Eval(28), new DataLoaderOptions { BatchSize = 9, Shuffle = false, Workers = 0 });
        foreach (var b in loader.Epoch(0)) b.Dispose();
        Assert.Equal(1, loader.UnreadableCount);
        Assert.Contains("scan.tif", loader.UnreadableItems.Single());
    }
}
