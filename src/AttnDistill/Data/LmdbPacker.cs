using System.Buffers.Binary;
using System.Text;
using LightningDB;

namespace AttnDistill.Data;

/// <summary>What <see cref="LmdbPacker.Pack"/> wrote.</summary>
/// <param name="Images">Records written.</param>
/// <param name="Bytes">Encoded image bytes stored.</param>
/// <param name="Skipped">Files left out because they are not readable images (their names).</param>
public sealed record LmdbPackResult(string Path, int Images, long Bytes, IReadOnlyList<string> Skipped);

/// <summary>
/// Packs an ImageFolder split into one LMDB file in the authors' layout (see
/// <see cref="LmdbImageDataset"/>), storing every file's encoded bytes as they are (no re-encoding:
/// pixels stay identical). Files whose header is not a readable image are skipped and named. The
/// pack is written under a temporary name and renamed at the end, so an interrupted pack never
/// leaves a file that looks complete.
/// </summary>
public static class LmdbPacker
{
    /// <summary>Records per write transaction, as folder2lmdb.py commits.</summary>
    public const int CommitEvery = 5000;

    /// <param name="source">The split to pack.</param>
    /// <param name="outputPath">The LMDB file to create (e.g. OUT/train.lmdb); must not exist.</param>
    /// <param name="progress">Called with the number of files handled so far.</param>
    /// <param name="threads">Threads reading and checking files.</param>
    public static LmdbPackResult Pack(ImageFolderDataset source, string outputPath, Action<int>? progress = null, int threads = 0, CancellationToken cancel = default)
    {
        if (File.Exists(outputPath) || Directory.Exists(outputPath))
            throw new IOException($"{outputPath} exists: remove it or pack into another folder (an existing pack is never overwritten)");
        LmdbLibrary.EnsureLoaded();
        threads = threads > 0 ? threads : Environment.ProcessorCount;
        string partial = outputPath + ".partial";
        DeletePack(partial);
        long total = Enumerable.Range(0, source.Count).Sum(i => new FileInfo(source.ItemName(i)).Length);
        var labels = new List<int>(source.Count);
        var skipped = new List<string>();
        long stored = 0;
        using (var env = new LightningEnvironment(partial, new EnvironmentConfiguration
        {
            // A bound on the file size, not an allocation: LMDB grows the file as it writes. Every
            // record takes whole pages, hence the per-record allowance.
            MapSize = 2 * total + 16384L * source.Count + (256L << 20),
        }))
        {
            try { env.Open(EnvironmentOpenFlags.NoSubDir); }
            catch (LightningException ex)
            {
                throw new IOException($"cannot create the LMDB file {partial} ({ex.Message}): is {Path.GetDirectoryName(Path.GetFullPath(outputPath))} writable? Choose a writable --out.", ex);
            }
            using var db = OpenDatabase(env);
            var batch = new (byte[]? Bytes, int Label)[Math.Min(CommitEvery, Math.Max(1, source.Count))];
            for (int start = 0; start < source.Count; start += batch.Length)
            {
                cancel.ThrowIfCancellationRequested();
                int n = Math.Min(batch.Length, source.Count - start);
                ImageTooLargeException.Unwrap(() => Parallel.For(0, n, new ParallelOptions { MaxDegreeOfParallelism = threads, CancellationToken = cancel }, j =>
                {
                    string file = source.ItemName(start + j);
                    batch[j] = (ImageDecoder.TryReadSize(file) is null ? null : ReadAll(file), source.Label(start + j));
                }));
                using var txn = env.BeginTransaction();
                for (int j = 0; j < n; j++)
                {
                    var (bytes, label) = batch[j];
                    if (bytes is null) { skipped.Add(source.ItemName(start + j)); continue; }
                    Check(txn.Put(db, LmdbImageDataset.RecordKey(labels.Count), ImageRecordPickle.Encode(bytes, label)));
                    labels.Add(label);
                    stored += bytes.Length;
                    batch[j] = default;
                }
                Check(txn.Commit());
                progress?.Invoke(start + n);
            }
            using (var txn = env.BeginTransaction())
            {
                var labelBytes = new byte[4 * labels.Count];
                for (int i = 0; i < labels.Count; i++) BinaryPrimitives.WriteInt32LittleEndian(labelBytes.AsSpan(4 * i), labels[i]);
                Check(txn.Put(db, Ascii(LmdbImageDataset.KeysKey), ImageRecordPickle.EncodeByteStrings(Enumerable.Range(0, labels.Count).Select(LmdbImageDataset.RecordKey))));
                Check(txn.Put(db, Ascii(LmdbImageDataset.LengthKey), ImageRecordPickle.EncodeInt(labels.Count)));
                Check(txn.Put(db, Ascii(LmdbImageDataset.ClassesKey), ImageRecordPickle.EncodeStrings(source.ClassNames)));
                Check(txn.Put(db, Ascii(LmdbImageDataset.LabelsKey), ImageRecordPickle.EncodeBytes(labelBytes)));
                Check(txn.Commit());
            }
            env.Flush(force: true);
        }
        File.Move(partial, outputPath);
        File.Delete(partial + "-lock");
        return new LmdbPackResult(outputPath, labels.Count, stored, skipped);
    }

    static LightningDatabase OpenDatabase(LightningEnvironment env)
    {
        using var txn = env.BeginTransaction();
        var db = txn.OpenDatabase(configuration: new DatabaseConfiguration { Flags = DatabaseOpenFlags.Create });
        Check(txn.Commit());
        return db;
    }

    static byte[]? ReadAll(string file)
    {
        try { return File.ReadAllBytes(file); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return null; }
    }

    static byte[] Ascii(string s) => Encoding.ASCII.GetBytes(s);

    static void Check(MDBResultCode rc)
    {
        if (rc != MDBResultCode.Success) throw new IOException($"LMDB write failed: {rc}");
    }

    static void DeletePack(string path)
    {
        File.Delete(path);
        File.Delete(path + "-lock");
    }
}
