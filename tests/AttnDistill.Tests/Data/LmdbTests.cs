using System.Diagnostics;
using AttnDistill.Data;
using AttnDistill.Data.Transforms;
using Xunit;
using static AttnDistill.Tests.Data.DataTestUtil;
using static TorchSharp.torch;

namespace AttnDistill.Tests.Data;

/// <summary>
/// LMDB packs: the authors' folder2lmdb.py layout read from a fixture Python wrote, our packer's
/// output read back (same pixels, labels and batches as the folder it came from), unreadable
/// files skipped, existing packs never overwritten, and Python's lmdb reading our pack.
/// </summary>
public class LmdbTests
{
    static string FixtureLmdb => Path.Combine(AppContext.BaseDirectory, "fixtures", "lmdb");

    static void AssertSameItems(IImageDataset expected, IImageDataset actual)
    {
        Assert.Equal(expected.Count, actual.Count);
        for (int i = 0; i < expected.Count; i++)
        {
            Assert.Equal(expected.Label(i), actual.Label(i));
            var a = expected.Load(i);
            var b = actual.Load(i);
            Assert.Equal((a.Width, a.Height, a.Channels), (b.Width, b.Height, b.Channels));
            Assert.True(a.Pixels.AsSpan().SequenceEqual(b.Pixels), $"item {i}: pixels differ");
        }
    }

    [Fact]
    public void TheAuthorsPackReadsAsTheFolderItCameFrom()
    {
        using var lmdb = new LmdbImageDataset(Path.Combine(FixtureLmdb, "train.lmdb"));
        var folder = new ImageFolderDataset(Path.Combine(FixtureLmdb, "folder", "train"));
        AssertSameItems(folder, lmdb);
        // Their packs carry no class names: classes are named by label.
        Assert.Equal(new[] { "0", "1" }, lmdb.ClassNames);
        Assert.EndsWith("train.lmdb#3", lmdb.ItemName(3));
    }

    [Fact]
    public void DataSetsThatAreDroppedUndisposedAreClosedQuietly()
    {
        // LightningDB's own finalizer throws for an undisposed environment, which ends the process.
        static void OpenAndDrop(string path)
        {
            for (int i = 0; i < 5; i++) _ = new LmdbImageDataset(path).Load(0);
        }
        OpenAndDrop(Path.Combine(FixtureLmdb, "train.lmdb"));
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        Assert.Throws<InvalidDataException>(() => new LmdbImageDataset(Path.Combine(FixtureLmdb, "folder", "train", "cat", "a.jpg")));
        GC.Collect();
        GC.WaitForPendingFinalizers();
    }

    [Fact]
    public void DatasetFactoryFindsPacksBesideNoFolders()
    {
        string root = TempDir("lmdb-detect");
        File.Copy(Path.Combine(FixtureLmdb, "train.lmdb"), Path.Combine(root, "train.lmdb"));
        Assert.Equal(DataFormat.Lmdb, DatasetFactory.Detect(root)!.Value.Format);
        Assert.Equal(6, DatasetFactory.Open(root, DataSplit.Train).Count);
        var e = Assert.Throws<FileNotFoundException>(() => DatasetFactory.Open(root, DataSplit.Val));
        Assert.Contains("val.lmdb or test.lmdb", e.Message);
        // folder2lmdb.py writes train.lmdb beside train/: the folders win, as a plain --data means them.
        Directory.CreateDirectory(Path.Combine(root, "train", "x"));
        Assert.Equal(DataFormat.ImageFolder, DatasetFactory.Detect(root)!.Value.Format);
    }

    [Fact]
    public void APackHoldsTheFolderBytesSkipsUnreadableFilesAndNeverOverwrites()
    {
        string root = MakeFolder("lmdb-pack", perClass: 5);
        WriteImage(Path.Combine(root, "b", "photo.jpg"), 20, 14, 7, SkiaSharp.SKEncodedImageFormat.Jpeg);
        File.WriteAllBytes(Path.Combine(root, "a", "empty.png"), Array.Empty<byte>());
        File.WriteAllText(Path.Combine(root, "c", "notes.jpg"), "not a picture");
        var source = new ImageFolderDataset(root);
        string pack = Path.Combine(TempDir("lmdb-out"), "train.lmdb");
        var seen = new List<int>();

        var result = LmdbPacker.Pack(source, pack, seen.Add, threads: 2);

        Assert.Equal(16, result.Images);
        Assert.Equal(new[] { "empty.png", "notes.jpg" }, result.Skipped.Select(Path.GetFileName).Order());
        Assert.Equal(source.Count, seen[^1]);
        Assert.False(File.Exists(pack + ".partial"));
        using var lmdb = new LmdbImageDataset(pack);
        Assert.Equal(new[] { "a", "b", "c" }, lmdb.ClassNames);
        var readable = new SubsetDataset(source, Enumerable.Range(0, source.Count)
            .Where(i => !result.Skipped.Contains(source.ItemName(i))).ToArray());
        AssertSameItems(readable, lmdb);

        long before = new FileInfo(pack).Length;
        var e = Assert.Throws<IOException>(() => LmdbPacker.Pack(source, pack));
        Assert.Contains("exists", e.Message);
        Assert.Equal(before, new FileInfo(pack).Length);
    }

    [Fact]
    public void TheLoaderGivesTheSameBatchesFromThePackAsFromTheFolder()
    {
        var source = new ImageFolderDataset(MakeFolder("lmdb-loader", perClass: 6));
        string pack = Path.Combine(TempDir("lmdb-loader-out"), "train.lmdb");
        LmdbPacker.Pack(source, pack);
        using var lmdb = new LmdbImageDataset(pack);
        foreach (int epoch in new[] { 0, 1 })
        {
            var a = Batches(source, epoch);
            var b = Batches(lmdb, epoch);
            Assert.Equal(a.Count, b.Count);
            for (int i = 0; i < a.Count; i++) Assert.Equal(a[i], b[i]);
        }
    }

    static List<float[]> Batches(IImageDataset ds, int epoch)
    {
        var loader = new DataLoader(ds, TransformPresets.Train(8), new DataLoaderOptions { BatchSize = 5, Workers = 2, Seed = 3 });
        var result = new List<float[]>();
        foreach (var b in loader.Epoch(epoch))
        {
            using var scope = NewDisposeScope();
            result.Add(Floats(b.Images).Concat(b.Labels.data<long>().ToArray().Select(l => (float)l)).ToArray());
        }
        return result;
    }

    [Fact]
    public void RecordsAsPythonPicklesThemParse()
    {
        // pickle.dumps((b"xyz", 7)) (protocol 4, framed) and pickle.dumps((b"xyz" * 100, 700), protocol=3) (BINPUT memos).
        byte[] p4 = Convert.FromHexString("8004950b00000000000000430378797a944b0786942e");
        var r = ImageRecordPickle.Parse(p4, "p4");
        Assert.Equal((13, 3, 7), (r.ImageOffset, r.ImageLength, r.Label));
        byte[] p3 = new byte[] { 0x80, 3, (byte)'B', 44, 1, 0, 0 }.Concat(Enumerable.Repeat((byte)'x', 300))
            .Concat(new byte[] { (byte)'q', 0, (byte)'M', 0xbc, 0x02, 0x86, (byte)'q', 1, (byte)'.' }).ToArray();
        r = ImageRecordPickle.Parse(p3, "p3");
        Assert.Equal((7, 300, 700), (r.ImageOffset, r.ImageLength, r.Label));
        // Our encoding parses back.
        r = ImageRecordPickle.Parse(ImageRecordPickle.Encode(new byte[1000], 70000), "ours");
        Assert.Equal((7, 1000, 70000), (r.ImageOffset, r.ImageLength, r.Label));
        var e = Assert.Throws<InvalidDataException>(() => ImageRecordPickle.Parse(p3[..100], "cut"));
        Assert.Contains("cut", e.Message);
    }

    [SkippableFact]
    public void PythonsLmdbReadsOurPackAsTheAuthorsLoaderDoes()
    {
        Skip.IfNot(PythonHasLmdb(), "python3-lmdb not installed (apt-get install python3-lmdb) for /usr/bin/python3");
        var source = new ImageFolderDataset(Path.Combine(FixtureLmdb, "folder", "train"));
        string pack = Path.Combine(TempDir("lmdb-py"), "train.lmdb");
        LmdbPacker.Pack(source, pack);
        // The reading half of the authors' ImageFolderLMDB: __len__, __keys__, then pickle.loads of each record.
        string script = "import lmdb, pickle, sys\n" +
            "env = lmdb.open(sys.argv[1], subdir=False, readonly=True, lock=False, readahead=False, meminit=False)\n" +
            "with env.begin(write=False) as txn:\n" +
            "    n = pickle.loads(txn.get(b'__len__')); keys = pickle.loads(txn.get(b'__keys__'))\n" +
            "    print(n, pickle.loads(txn.get(b'__classes__')))\n" +
            "    for k in keys:\n" +
            "        img, label = pickle.loads(txn.get(k)); print(k.decode(), label, len(img), img[:2].hex())\n";
        var (code, output) = RunPython(script, pack);
        Assert.True(code == 0, output);
        var lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal("6 ['cat', 'dog']", lines[0]);
        for (int i = 0; i < source.Count; i++)
        {
            byte[] bytes = File.ReadAllBytes(source.ItemName(i));
            Assert.Equal($"{i} {source.Label(i)} {bytes.Length} {Convert.ToHexString(bytes[..2]).ToLowerInvariant()}", lines[i + 1]);
        }
    }

    static bool PythonHasLmdb() => File.Exists("/usr/bin/python3") && RunPython("import lmdb", "").Code == 0;

    static (int Code, string Output) RunPython(string script, string arg)
    {
        string file = Path.Combine(TempDir("py"), "read.py");
        File.WriteAllText(file, script);
        var psi = new ProcessStartInfo("/usr/bin/python3") { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add(file);
        psi.ArgumentList.Add(arg);
        using var p = Process.Start(psi)!;
        string stdout = p.StandardOutput.ReadToEnd(), stderr = p.StandardError.ReadToEnd();
        p.WaitForExit();
        return (p.ExitCode, stdout + stderr);
    }
}
