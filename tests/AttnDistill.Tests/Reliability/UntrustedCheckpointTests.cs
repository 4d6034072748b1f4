using System.Collections;
using System.IO.Compression;
using System.Text;
using System.Text.Json;
using AttnDistill.Checkpoints;
using Xunit;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace AttnDistill.Tests.Reliability;

public class UntrustedCheckpointTests(ITestOutputHelper output)
{
    const string Marker = "/tmp/attndistill-pwned";
    static string FixtureDir => Path.Combine(AppContext.BaseDirectory, "fixtures");
    static string Fixture(string name) => Path.Combine(FixtureDir, "reliability", name);
    static string Temp(string name) => Path.Combine(Directory.CreateTempSubdirectory("untrusted").FullName, name);

    [Theory]
    [InlineData("evil_os_system.pth", "posix.system")]
    [InlineData("evil_eval.pth", "__builtin__.eval")]
    [InlineData("evil_getattr.pth", "__builtin__.getattr")]
    public void PicklesNamingOtherGlobalsAreRefusedAndNothingRuns(string file, string global)
    {
        File.Delete(Marker);
        foreach (var load in new Action[] { () => CheckpointReader.ReadPickle(Fixture(file)), () => CheckpointReader.Read(Fixture(file)) })
        {
            var ex = Assert.Throws<CheckpointFormatException>(load);
            Assert.Contains($"'{global}'", ex.Message);
            Assert.Contains("refused", ex.Message);
            Assert.Contains(file, ex.Message);
        }
        Assert.False(File.Exists(Marker));
    }

    [Fact]
    public void AWholePickledModelIsRefusedWithTheFix()
    {
        var ex = Assert.Throws<CheckpointFormatException>(() => CheckpointReader.ReadPickle(Fixture("whole_model.pth")));
        Assert.Contains("torch.nn.modules.linear.Linear", ex.Message);
        Assert.Contains("model.state_dict()", ex.Message);
    }

    [Fact]
    public void AllowListCoversWhatRealCheckpointsNameAndNothingExecutable()
    {
        foreach (string g in new[] { "torch._utils._rebuild_tensor_v2", "torch.FloatStorage", "collections.OrderedDict", "torch._utils._rebuild_parameter",
                     "argparse.Namespace", "numpy.core.multiarray.scalar", "numpy.dtype", "_codecs.encode" })
            Assert.Contains(g, PickleAllowList.Names);
        foreach (string g in PickleAllowList.Names)
            Assert.DoesNotMatch(@"^(os|posix|nt|subprocess|sys|importlib|runpy|pickle|shutil)\.|\.(eval|exec|system|getattr|setattr|__import__|compile|open|apply|globals)$", g);
    }

    [Fact]
    public void ViewsOfOneStorageAreReadLikePyTorch()
    {
        var root = CheckpointReader.ReadPickle(Fixture("views.pth"));
        using var doc = JsonDocument.Parse(File.ReadAllText(Fixture("views_expected.json")));
        foreach (var e in doc.RootElement.GetProperty("values").EnumerateObject())
        {
            var t = (Tensor)root[e.Name]!;
            var shape = doc.RootElement.GetProperty("shapes").GetProperty(e.Name).EnumerateArray().Select(x => x.GetInt64()).ToArray();
            Assert.Equal(shape, t.shape);
            Assert.Equal(e.Value.EnumerateArray().Select(x => x.GetSingle()).ToArray(), t.contiguous().flatten().data<float>().ToArray());
        }
        // Tied weights stay one tensor's memory, as torch.load gives them.
        ((Tensor)root["tied_a"]!).add_(1);
        Assert.True(((Tensor)root["tied_a"]!).equal((Tensor)root["tied_b"]!).all().item<bool>());
    }

    [Fact]
    public void Protocol4PickleWithBytesSetsAndNestingLoads()
    {
        var root = CheckpointReader.ReadPickle(Fixture("protocol4.pth"));
        Assert.Equal(new long[] { 2, 3 }, ((Tensor)root["weight"]!).shape);
        Assert.Equal(ScalarType.Float64, ((Tensor)root["bias"]!).dtype);
        Assert.Equal(7L, ((Tensor)root["steps"]!).item<long>());
        Assert.Equal(new byte[] { 0, 1, (byte)'r', (byte)'a', (byte)'w' }, (byte[])root["blob"]!);
        Assert.Equal(2, ((HashSet<object?>)root["tags"]!).Count);
        Assert.Null(root["none"]);
        Assert.True(root.ContainsKey("none"));
        var nested = (List<object?>)root["nested"]!;
        Assert.Equal(2.5, ((List<object?>)((List<object?>)nested[0]!)[1]!)[0]);
    }

    [Fact]
    public void DinoArgsAndNumpyScalarAreDataRecords()
    {
        var root = CheckpointReader.ReadPickle(Path.Combine(FixtureDir, "vit", "vit_a_dino.pth"));
        var args = Assert.IsType<PythonNamespace>(root["args"]);
        Assert.Equal("vit_a", args["arch"]);
        var knn = Assert.IsType<OpaquePythonObject>(root["best_knn"]);
        Assert.EndsWith("scalar", knn.TypeName);
        // numpy.float64(0.25) is (dtype, 8 raw bytes): the value is there, unexecuted.
        Assert.Equal(0.25, BitConverter.ToDouble((byte[])knn.Args[1]!));
    }

    /// <summary>A torch.save-shaped zip with the given pickle and storages (stored, not compressed).</summary>
    static string Archive(byte[] pickle, params (string Key, byte[] Data)[] storages)
    {
        string path = Temp("crafted.pth");
        using var zip = ZipFile.Open(path, ZipArchiveMode.Create);
        using (var s = zip.CreateEntry("a/data.pkl", CompressionLevel.NoCompression).Open()) s.Write(pickle);
        foreach (var (key, data) in storages)
            using (var s = zip.CreateEntry("a/data/" + key, CompressionLevel.NoCompression).Open()) s.Write(data);
        return path;
    }

    /// <summary>
    /// Protocol-2 pickle of {'w': _rebuild_tensor_v2(storage('0', numel), offset, size, stride, False, OrderedDict())},
    /// or of w0 ... w{copies-1}, all views of that one storage.
    /// </summary>
    static byte[] TensorPickle(long numel, long[] size, long[] stride, long offset = 0, int copies = 0)
    {
        var p = new List<byte> { 0x80, 2, (byte)'}' };
        void Str(string s) { p.Add((byte)'X'); p.AddRange(BitConverter.GetBytes(s.Length)); p.AddRange(Encoding.UTF8.GetBytes(s)); }
        void Long(long v) { p.Add(0x8a); p.Add(8); p.AddRange(BitConverter.GetBytes(v)); }
        for (int c = 0; c < Math.Max(1, copies); c++)
        {
            Str(copies == 0 ? "w" : $"w{c}");
            p.AddRange(Encoding.ASCII.GetBytes("ctorch._utils\n_rebuild_tensor_v2\n"));
            p.Add((byte)'(');
            p.Add((byte)'(');
            Str("storage");
            p.AddRange(Encoding.ASCII.GetBytes("ctorch\nFloatStorage\n"));
            Str("0");
            Str("cpu");
            Long(numel);
            p.Add((byte)'t');
            p.Add((byte)'Q');
            Long(offset);
            p.Add((byte)'(');
            foreach (long d in size) Long(d);
            p.Add((byte)'t');
            p.Add((byte)'(');
            foreach (long d in stride) Long(d);
            p.Add((byte)'t');
            p.Add(0x89);
            p.AddRange(Encoding.ASCII.GetBytes("ccollections\nOrderedDict\n"));
            p.Add((byte)')');
            p.Add((byte)'R');
            p.Add((byte)'t');
            p.Add((byte)'R');
            p.Add((byte)'s');
        }
        p.Add((byte)'.');
        return p.ToArray();
    }

    [Fact]
    public void CraftedTensorPickleLoadsWhenSizesAreHonest()
    {
        var data = new float[] { 1, 2, 3, 4, 5, 6 }.SelectMany(BitConverter.GetBytes).ToArray();
        var root = CheckpointReader.ReadPickle(Archive(TensorPickle(6, new long[] { 2, 3 }, new long[] { 3, 1 }), ("0", data)));
        Assert.Equal(new float[] { 1, 2, 3, 4, 5, 6 }, ((Tensor)root["w"]!).data<float>().ToArray());
    }

    [Fact]
    public void DeclaredHugeSizesAreCheckedAgainstTheFileBeforeAllocation()
    {
        var data = new byte[24];
        long rss = CheckpointFuzzer.RssBytes();
        // A storage of 2^40 floats (4 TiB) backed by a 24-byte entry.
        var ex = Assert.Throws<CheckpointFormatException>(() => CheckpointReader.ReadPickle(Archive(TensorPickle(1L << 40, new long[] { 1L << 40 }, new long[] { 1 }), ("0", data))));
        Assert.Contains("declares", ex.Message);
        // A tensor reaching past its storage, and one whose size product overflows.
        ex = Assert.Throws<CheckpointFormatException>(() => CheckpointReader.ReadPickle(Archive(TensorPickle(6, new long[] { 1000, 1000 }, new long[] { 1000, 1 }), ("0", data))));
        Assert.Contains("reaches element", ex.Message);
        ex = Assert.Throws<CheckpointFormatException>(() => CheckpointReader.ReadPickle(Archive(TensorPickle(6, new long[] { 1L << 40, 1L << 40 }, new long[] { 0, 0 }), ("0", data))));
        Assert.Contains("overflows", ex.Message);
        ex = Assert.Throws<CheckpointFormatException>(() => CheckpointReader.ReadPickle(Archive(TensorPickle(6, new long[] { 1L << 30 }, new long[] { 0 }), ("0", data))));
        Assert.Contains("expanded view", ex.Message);
        Assert.True(CheckpointFuzzer.RssBytes() - rss < 64L << 20, "no large allocation happened");

        // Views cost copies: 40 views of almost all of one 512 KiB storage would take 20 MiB from a 0.5 MiB file.
        var big = new byte[512 << 10];
        ex = Assert.Throws<CheckpointFormatException>(() => CheckpointReader.ReadPickle(
            Archive(TensorPickle(big.Length / 4, new long[] { big.Length / 4 - 1 }, new long[] { 1 }, offset: 1, copies: 40), ("0", big))));
        Assert.Contains("more tensor copies", ex.Message);
    }

    [Fact]
    public void AZipEntryClaimingAnImpossibleInflatedSizeIsRefused()
    {
        string path = Temp("bomb.pth");
        using (var zip = ZipFile.Open(path, ZipArchiveMode.Create))
        using (var s = zip.CreateEntry("a/data.pkl", CompressionLevel.Optimal).Open())
            s.Write(new byte[] { 0x80, 2, (byte)'}', (byte)'.' });
        // Patch the central directory's uncompressed size to 2 GiB - 1.
        var bytes = File.ReadAllBytes(path);
        int cd = bytes.AsSpan().LastIndexOf(new byte[] { 0x50, 0x4b, 0x01, 0x02 });
        BitConverter.TryWriteBytes(bytes.AsSpan(cd + 24, 4), int.MaxValue);
        File.WriteAllBytes(path, bytes);
        var ex = Assert.Throws<CheckpointFormatException>(() => CheckpointReader.ReadPickle(path));
        Assert.Contains("zip bomb", ex.Message);
    }

    [Fact]
    public void DeepAndCyclicContainersEndInAnErrorNotAStackOverflow()
    {
        // {'x': [[[[...]]]]} nested 300,000 deep, then a list that contains itself.
        const int depth = 300_000;
        var p = new List<byte> { 0x80, 2, (byte)'}', 0x8c, 1, (byte)'x' };
        p.AddRange(Enumerable.Repeat((byte)']', depth));
        p.AddRange(Enumerable.Repeat((byte)'a', depth - 1));
        p.Add((byte)'s');
        p.AddRange(new byte[] { 0x8c, 1, (byte)'y', (byte)']', (byte)'q', 0, (byte)'h', 0, (byte)'a', (byte)'s', (byte)'.' });
        string path = Archive(p.ToArray());
        var root = CheckpointReader.ReadPickle(path);
        var cyclic = (List<object?>)root["y"]!;
        Assert.Same(cyclic, cyclic[0]);
        var ex = Assert.Throws<CheckpointFormatException>(() => CheckpointReader.Read(path));
        Assert.Contains("no ViT backbone tensors", ex.Message);
    }

    [Fact]
    public void Crc32MatchesTheStandardCheckValue()
    {
        Assert.Equal(0xCBF43926u, Crc32.Compute("123456789"u8));
        var data = Enumerable.Range(0, 1000).Select(i => (byte)(i * 7)).ToArray();
        Assert.Equal(Crc32.Compute(data), Crc32.Compute(data.AsSpan(13), Crc32.Compute(data.AsSpan(0, 13))));
    }

    [Fact]
    public void AFlippedByteInATensorFailsTheZipChecksum()
    {
        // torch.save stores entries uncompressed with a CRC-32: a damaged download must not load as weights.
        string src = Path.Combine(FixtureDir, "vit", "vit_a.pth");
        var bytes = File.ReadAllBytes(src);
        long dataAt;
        using (var zip = ZipFile.OpenRead(src))
        {
            var entry = zip.GetEntry("vit_a/data/0")!;
            using var s = entry.Open();
            var first = new byte[16];
            s.ReadExactly(first);
            dataAt = bytes.AsSpan().IndexOf(first);
        }
        bytes[dataAt + 8] ^= 0xff;
        string path = Temp("flipped.pth");
        File.WriteAllBytes(path, bytes);
        var ex = Assert.Throws<CheckpointFormatException>(() => CheckpointReader.Read(path));
        Assert.Contains("data/0", ex.Message);
    }

    [Fact]
    public void FuzzedCheckpointsLoadOrFailClearly()
    {
        // bench/soak runs the same fuzzer with thousands of cases (ATTNDISTILL_FUZZ_CASES overrides here).
        int cases = int.TryParse(Environment.GetEnvironmentVariable("ATTNDISTILL_FUZZ_CASES"), out int n) ? n : 400;
        string dir = Directory.CreateTempSubdirectory("fuzz").FullName;
        var report = CheckpointFuzzer.Run(CheckpointFuzzer.StandardSeeds(FixtureDir, CheckpointFuzzer.TrainingCheckpointSeed(dir)), cases, randomSeed: 11,
            Path.Combine(dir, "cases"), TimeSpan.FromSeconds(20));
        output.WriteLine(report.ToString());
        Assert.True(report.Failures.Count == 0, string.Join("\n", report.Failures.Take(20)));
        Assert.True(report.Refused > cases / 2, report.ToString());
        Assert.True(report.PeakRssGrowthBytes < 512L << 20, report.ToString());
    }
}
