using System.Diagnostics;
using System.IO.Compression;
using AttnDistill.Checkpoints;

namespace AttnDistill.Tests.Reliability;

/// <summary>
/// Mutates valid checkpoint files and feeds each case to a loader. Raw damage (truncation, bit
/// flips, overwritten runs, inserted and deleted bytes, large numbers written into headers; for
/// torch zips also the pickle itself, repacked with a valid CRC so the unpickler sees the damage)
/// and structural lies that keep the file plausible: safetensors headers edited as JSON
/// (<see cref="SafetensorsMutations"/>), zips written by hand with deflated entries, bombs and
/// size fields that disagree (<see cref="ZipMutations"/>), and crafted training checkpoints whose
/// checksum passes, resumed by the real trainer (<see cref="CraftedCheckpoints"/>,
/// <see cref="ResumeProbe"/>). A case passes when the loader either loads or throws a
/// <see cref="CheckpointFormatException"/> (or, for a model that does not fit, a
/// <see cref="CheckpointMismatchException"/>) whose message names the file, within a time bound.
/// Shared by the test suite (a few hundred cases) and bench/soak (thousands). No xunit here.
/// </summary>
public sealed class CheckpointFuzzer
{
    /// <summary>A valid file and the loader to feed its mutants to (the loader disposes what it loads).</summary>
    /// <param name="Craft">Makes a case from scratch instead of mutating <paramref name="Bytes"/> (crafted checkpoints).</param>
    /// <param name="FileName">When set, each case is this file inside its own folder (a run folder for --resume).</param>
    public sealed record Seed(string Name, byte[] Bytes, string Extension, Action<string> Load,
        Func<Random, (string Kind, byte[] Bytes)>? Craft = null, string? FileName = null);

    /// <summary>The standard seeds: every committed .pth/.safetensors fixture and a training checkpoint written here.</summary>
    public static IReadOnlyList<Seed> StandardSeeds(string fixtureDir, string trainingCheckpoint)
    {
        var seeds = new List<Seed>();
        foreach (string f in new[] { "vit/vit_a.pth", "vit/vit_a_dino.pth", "vit/vit_b_mae.pth", "reliability/views.pth", "reliability/protocol4.pth" })
        {
            string p = Path.Combine(fixtureDir, f);
            seeds.Add(new Seed(f, File.ReadAllBytes(p), ".pth", LoadPth));
        }
        foreach (string f in new[] { "vit/vit_a.safetensors", "vit/vit_b.safetensors" })
            seeds.Add(new Seed(f, File.ReadAllBytes(Path.Combine(fixtureDir, f)), ".safetensors", path => CheckpointReader.Read(path).Dispose()));
        seeds.Add(new Seed("training.ckpt", File.ReadAllBytes(trainingCheckpoint), ".ckpt", path => TrainingCheckpoint.Load(path).Dispose()));
        return seeds;
    }

    /// <summary>
    /// The standard seeds plus crafted checkpoints resumed by the trainer (<paramref name="crafted"/>
    /// is owned by the caller: it holds the seed checkpoint's tensors).
    /// </summary>
    public static IReadOnlyList<Seed> ExtendedSeeds(string fixtureDir, string trainingCheckpoint, CraftedCheckpoints crafted) =>
        StandardSeeds(fixtureDir, trainingCheckpoint).Append(new Seed("resume", Array.Empty<byte>(), ".ckpt",
            path => ResumeProbe.Resume(Path.GetDirectoryName(path)!), crafted.Mutate, FileName: "checkpoint-0001.ckpt")).ToList();

    /// <summary>A small training checkpoint (model + optimizer bytes + RNG + config), as the trainer writes them.</summary>
    public static string TrainingCheckpointSeed(string dir)
    {
        TorchSharp.torch.manual_seed(3);
        var cfg = new AttnDistill.Models.VitConfig { ImageSize = 8, PatchSize = 4, EmbedDim = 8, Depth = 1, NumHeads = 2 };
        using var vit = new AttnDistill.Models.VisionTransformer(cfg);
        string path = Path.Combine(dir, "seed.ckpt");
        var ckpt = new TrainingCheckpoint
        {
            Model = vit.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone()),
            ModelConfig = cfg, Config = "epochs: 2\n", Epoch = 1, Step = 4,
            Sections =
            {
                [TrainingCheckpoint.OptimizerSection] = new() { Tensors = { ["torchsharp_state"] = TorchSharp.torch.tensor(new byte[] { 1, 2, 3, 4 }) }, Json = "{\"type\":\"AdamW\"}" },
                [TrainingCheckpoint.RngSection] = TrainingCheckpoint.CaptureTorchRng(),
            },
        };
        using (ckpt) ckpt.Save(path);
        return path;
    }

    /// <summary>Both the whole pickle (any dict) and the backbone reader on top of it.</summary>
    static void LoadPth(string path)
    {
        var root = CheckpointReader.ReadPickle(path);
        try { CheckpointReader.Read(path).Dispose(); }
        catch (CheckpointFormatException) { /* a valid pickle without a backbone is a clear refusal too */ }
        finally { DisposeTensors(root); }
    }

    static void DisposeTensors(System.Collections.IDictionary root)
    {
        foreach (System.Collections.DictionaryEntry e in root)
        {
            if (e.Value is TorchSharp.torch.Tensor t) t.Dispose();
            else if (e.Value is System.Collections.IDictionary d && !ReferenceEquals(d, root)) DisposeTensors(d);
        }
    }

    public static FuzzReport Run(IReadOnlyList<Seed> seeds, int cases, int randomSeed, string workDir, TimeSpan timeout, Action<string>? log = null)
    {
        Directory.CreateDirectory(workDir);
        return FuzzLoop.Run(cases, randomSeed, (i, rng) =>
        {
            var seed = seeds[i % seeds.Count];
            var (kind, bytes) = seed.Craft?.Invoke(rng) ?? Mutate(seed, rng);
            string folder = Path.Combine(workDir, $"case{i:D5}");
            string path = seed.FileName is null ? folder + seed.Extension : Path.Combine(folder, seed.FileName);
            if (seed.FileName is not null) Directory.CreateDirectory(folder);
            File.WriteAllBytes(path, bytes);
            return new FuzzCase(kind, $"{seed.Name}, {bytes.Length} bytes", () => seed.Load(path),
                error => error is CheckpointFormatException or CheckpointMismatchException && error.Message.Contains(path, StringComparison.Ordinal)
                    ? null : FuzzLoop.Describe(error),
                () =>
                {
                    if (seed.FileName is null) File.Delete(path);
                    else Directory.Delete(folder, recursive: true);
                });
        }, timeout, log);
    }

    static (string Kind, byte[] Bytes) Mutate(Seed seed, Random rng)
    {
        byte[] b = seed.Bytes;
        // A third of the zip cases damage the pickle itself (a raw flip mostly breaks the zip's CRC
        // first), a third lie in the zip's own structure; 40 % of the safetensors cases lie in the header.
        if (seed.Extension == ".pth" && rng.Next(3) == 0) return ZipMutations.Mutate(b, rng);
        if (seed.Extension is ".safetensors" or ".ckpt" && rng.Next(5) < 2) return SafetensorsMutations.Mutate(b, rng);
        int choice = seed.Extension == ".pth" && rng.Next(2) == 0 ? 7 : rng.Next(7);
        switch (choice)
        {
            case 0:
                return ("truncate", b[..rng.Next(b.Length)]);
            case 1:
            {
                var c = (byte[])b.Clone();
                int n = 1 + rng.Next(8);
                for (int k = 0; k < n; k++) c[rng.Next(c.Length)] ^= (byte)(1 << rng.Next(8));
                return ("bitflip", c);
            }
            case 2:
            {
                var c = (byte[])b.Clone();
                int at = rng.Next(c.Length), len = Math.Min(c.Length - at, 1 << rng.Next(4));
                byte v = new byte[] { 0x00, 0xff, 0x7f, 0x80, 0x41 }[rng.Next(5)];
                c.AsSpan(at, len).Fill(v);
                return ("overwrite", c);
            }
            case 3:
            {
                int at = rng.Next(b.Length), len = 1 + rng.Next(64);
                var junk = new byte[len];
                rng.NextBytes(junk);
                return ("insert", b[..at].Concat(junk).Concat(b[at..]).ToArray());
            }
            case 4:
            {
                int at = rng.Next(b.Length), len = Math.Min(b.Length - at, 1 + rng.Next(64));
                return ("delete", b[..at].Concat(b[(at + len)..]).ToArray());
            }
            case 5:
                return ("bignumber", BigNumber(b, rng));
            case 6:
            {
                // A run of bytes copied from elsewhere in the file: plausible structure in the wrong place.
                var c = (byte[])b.Clone();
                int len = 1 + rng.Next(Math.Min(32, c.Length)), from = rng.Next(c.Length - len + 1), to = rng.Next(c.Length - len + 1);
                Array.Copy(b, from, c, to, len);
                return ("splice", c);
            }
            default:
                return ("pickle", MutatePickle(b, rng));
        }
    }

    /// <summary>Replaces a run of ASCII digits (a JSON number in a header) or a 4/8-byte field with a huge value.</summary>
    static byte[] BigNumber(byte[] b, Random rng)
    {
        var c = (byte[])b.Clone();
        for (int tries = 0; tries < 64; tries++)
        {
            int at = rng.Next(c.Length);
            if (c[at] is >= (byte)'0' and <= (byte)'9')
            {
                int end = at;
                while (end < c.Length && c[end] is >= (byte)'0' and <= (byte)'9') end++;
                var big = System.Text.Encoding.ASCII.GetBytes(new[] { "99999999999", "18446744073709551615", "4294967296", "-1", "0" }[rng.Next(5)]);
                return c[..at].Concat(big).Concat(c[end..]).ToArray();
            }
        }
        int pos = rng.Next(Math.Max(1, c.Length - 8));
        BitConverter.TryWriteBytes(c.AsSpan(pos, Math.Min(8, c.Length - pos)), rng.Next(2) == 0 ? int.MaxValue : -1);
        return c;
    }

    /// <summary>Damages data.pkl (or a storage entry) inside the zip and repacks it with valid CRCs.</summary>
    static byte[] MutatePickle(byte[] zipBytes, Random rng)
    {
        var entries = new List<(string Name, byte[] Data)>();
        using (var zin = new ZipArchive(new MemoryStream(zipBytes), ZipArchiveMode.Read))
            foreach (var e in zin.Entries)
            {
                using var s = e.Open();
                var ms = new MemoryStream();
                s.CopyTo(ms);
                entries.Add((e.FullName, ms.ToArray()));
            }
        int target = entries.FindIndex(e => e.Name.EndsWith("data.pkl", StringComparison.Ordinal));
        if (rng.Next(5) == 0)
        {
            // A storage entry cut short or dropped.
            var storages = entries.Select((e, i) => (e, i)).Where(x => x.e.Name.Contains("/data/", StringComparison.Ordinal)).ToList();
            if (storages.Count > 0)
            {
                var (e, i) = storages[rng.Next(storages.Count)];
                if (rng.Next(2) == 0) entries.RemoveAt(i);
                else entries[i] = (e.Name, e.Data[..rng.Next(e.Data.Length + 1)]);
                return Pack(entries);
            }
        }
        var p = (byte[])entries[target].Data.Clone();
        switch (rng.Next(5))
        {
            case 0: p = p[..rng.Next(p.Length)]; break;
            case 1: for (int k = 0, n = 1 + rng.Next(4); k < n; k++) p[rng.Next(p.Length)] = (byte)rng.Next(256); break;
            case 2:
            {
                // Opcodes that take a length or an index, followed by a huge one.
                byte op = new byte[] { (byte)'X', (byte)'B', (byte)'r', (byte)'j', (byte)'J', 0x8b, (byte)'T' }[rng.Next(7)];
                int at = rng.Next(p.Length);
                p = p[..at].Concat(new byte[] { op, 0xff, 0xff, 0xff, 0x7f }).Concat(p[at..]).ToArray();
                break;
            }
            case 3:
            {
                int len = 1 + rng.Next(Math.Min(40, p.Length)), from = rng.Next(p.Length - len + 1), to = rng.Next(p.Length);
                p = p[..to].Concat(p.AsSpan(from, len).ToArray()).Concat(p[to..]).ToArray();
                break;
            }
            default:
                p = BigNumber(p, rng);
                break;
        }
        entries[target] = (entries[target].Name, p);
        return Pack(entries);
    }

    static byte[] Pack(List<(string Name, byte[] Data)> entries)
    {
        var ms = new MemoryStream();
        using (var zout = new ZipArchive(ms, ZipArchiveMode.Create, leaveOpen: true))
            foreach (var (name, data) in entries)
            {
                using var s = zout.CreateEntry(name, CompressionLevel.NoCompression).Open();
                s.Write(data);
            }
        return ms.ToArray();
    }

    /// <summary>Resets the kernel's peak-RSS mark (VmHWM) to the current RSS (Linux: /proc/self/clear_refs).</summary>
    public static void ResetPeakRss()
    {
        try { File.WriteAllText("/proc/self/clear_refs", "5"); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
    }

    /// <summary>VmHWM of this process in bytes (0 where /proc is absent).</summary>
    public static long PeakRssBytes() => ProcStatus("VmHWM:");

    public static long RssBytes() => ProcStatus("VmRSS:");

    static long ProcStatus(string key)
    {
        if (!File.Exists("/proc/self/status")) return 0;
        foreach (string line in File.ReadLines("/proc/self/status"))
            if (line.StartsWith(key, StringComparison.Ordinal))
                return long.Parse(line[key.Length..].Trim().Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture) * 1024;
        return 0;
    }
}
