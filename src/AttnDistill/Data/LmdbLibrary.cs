using System.Runtime.InteropServices;
using LightningDB;

namespace AttnDistill.Data;

/// <summary>
/// Points LightningDB at the system's LMDB (Debian's liblmdb0, 0.9.x). The copy inside the
/// LightningDB package is LMDB 1.0 built against glibc 2.38, which Debian 12 does not have, and
/// 0.9 is also the version Python's <c>lmdb</c> module links, so files written here open there
/// (the authors' <c>folder2lmdb.py</c> packs) and the other way round.
/// </summary>
public static class LmdbLibrary
{
    const string Install = "install Debian's liblmdb0 (apt-get install liblmdb0) or another LMDB 0.9 as liblmdb.so.0";
    private static readonly object Gate = new();

    private static IntPtr _handle;

    /// <summary>Loads LMDB and routes LightningDB to it, once; call before the first LightningDB call.</summary>
    public static void EnsureLoaded()
    {
        lock (Gate)
        {
            if (_handle != IntPtr.Zero) return;
            var assembly = typeof(LightningEnvironment).Assembly;
            foreach (string candidate in new[] { "liblmdb.so.0", "liblmdb.so", "liblmdb.dylib", "lmdb.dll" })
                if (NativeLibrary.TryLoad(candidate, out _handle)) break;
            // Last resort: the package's own copy (works where its glibc requirement is met).
            if (_handle == IntPtr.Zero && !NativeLibrary.TryLoad("lmdb", assembly, null, out _handle))
                throw new InvalidOperationException($"LMDB data sets need the LMDB library: {Install}.");
            NativeLibrary.SetDllImportResolver(assembly, (name, _, _) => name == "lmdb" ? _handle : IntPtr.Zero);
        }
    }
}
