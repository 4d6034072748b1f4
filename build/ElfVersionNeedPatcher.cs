// Makes one versioned dependency of an ELF shared library optional ("weak") so that the dynamic
// loader accepts an older libstdc++.
//
// Why: TorchSharp 0.107's libLibTorchSharp.so was linked with GCC 13, whose headers reference
// std::ios_base_library_init() under version GLIBCXX_3.4.32. Debian 12 ships GCC 12's libstdc++
// (GLIBCXX_3.4.30), so the loader refuses the library although that symbol is never called.
// Setting VER_FLG_WEAK on the Vernaux entry turns the hard version check into a soft one.
//
// This file is compiled twice: as an MSBuild inline task (Directory.Build.targets) and, with
// ELF_PATCHER_NO_MSBUILD defined, into the unit tests. It targets netstandard2.0 (the inline
// task compiler's), hence no spans or newer File APIs.
#nullable disable
using System;
using System.IO;
using System.Text;

public static class ElfVersionNeedPatcher
{
    public const ushort VerFlagWeak = 0x2;
    const uint ShtGnuVerneed = 0x6ffffffe;

    public enum Outcome { Patched, AlreadyWeak, NotReferenced, NotElf }

    /// <summary>True when the library file holds the version name in its string tables.</summary>
    public static bool LibraryDefinesVersion(string libraryPath, string versionName)
    {
        if (!File.Exists(libraryPath)) return false;
        byte[] data = File.ReadAllBytes(libraryPath);
        byte[] needle = Encoding.ASCII.GetBytes(versionName + "\0");
        return IndexOf(data, needle) >= 0;
    }

    /// <summary>Finds the libstdc++ the loader would pick on common Linux layouts, or null.</summary>
    public static string FindSystemLibStdCxx()
    {
        string[] candidates =
        {
            "/usr/lib/x86_64-linux-gnu/libstdc++.so.6", "/lib/x86_64-linux-gnu/libstdc++.so.6",
            "/usr/lib64/libstdc++.so.6", "/lib64/libstdc++.so.6", "/usr/lib/libstdc++.so.6",
            "/usr/lib/aarch64-linux-gnu/libstdc++.so.6",
        };
        foreach (var c in candidates) if (File.Exists(c)) return c;
        return null;
    }

    /// <summary>Sets VER_FLG_WEAK on every Vernaux entry named <paramref name="versionName"/>.</summary>
    public static Outcome MarkVersionWeak(byte[] elf, string versionName)
    {
        // ELF64 little-endian only: the platforms libtorch ships for.
        if (elf.Length < 64 || elf[0] != 0x7f || elf[1] != (byte)'E' || elf[2] != (byte)'L' || elf[3] != (byte)'F'
            || elf[4] != 2 || elf[5] != 1)
            return Outcome.NotElf;
        long shoff = (long)BitConverter.ToUInt64(elf, 0x28);
        int shentsize = BitConverter.ToUInt16(elf, 0x3A);
        int shnum = BitConverter.ToUInt16(elf, 0x3C);
        bool found = false, patched = false;
        for (int i = 0; i < shnum; i++)
        {
            long sh = shoff + (long)i * shentsize;
            if (BitConverter.ToUInt32(elf, (int)sh + 4) != ShtGnuVerneed) continue;
            long offset = (long)BitConverter.ToUInt64(elf, (int)sh + 24);
            uint strtabIndex = BitConverter.ToUInt32(elf, (int)sh + 40);
            uint entries = BitConverter.ToUInt32(elf, (int)sh + 44);
            long strtabOffset = (long)BitConverter.ToUInt64(elf, (int)(shoff + strtabIndex * shentsize) + 24);

            long vn = offset;
            for (uint n = 0; n < entries; n++)
            {
                ushort auxCount = BitConverter.ToUInt16(elf, (int)vn + 2);
                long aux = vn + BitConverter.ToUInt32(elf, (int)vn + 8);
                for (int a = 0; a < auxCount; a++)
                {
                    uint nameOffset = BitConverter.ToUInt32(elf, (int)aux + 8);
                    if (ReadCString(elf, strtabOffset + nameOffset) == versionName)
                    {
                        found = true;
                        int flagsAt = (int)aux + 4;
                        ushort flags = BitConverter.ToUInt16(elf, flagsAt);
                        if ((flags & VerFlagWeak) == 0)
                        {
                            BitConverter.GetBytes((ushort)(flags | VerFlagWeak)).CopyTo(elf, flagsAt);
                            patched = true;
                        }
                    }
                    aux += BitConverter.ToUInt32(elf, (int)aux + 12);
                }
                vn += BitConverter.ToUInt32(elf, (int)vn + 12);
            }
        }
        return patched ? Outcome.Patched : found ? Outcome.AlreadyWeak : Outcome.NotReferenced;
    }

    /// <summary>
    /// Patches the file in place, atomically (temp file + rename), when the system libstdc++
    /// lacks the version. Returns a one-line description of what was done.
    /// </summary>
    public static string PatchIfNeeded(string libraryPath, string versionName, string systemLibStdCxx)
    {
        if (systemLibStdCxx == null) return "no system libstdc++ found; left as is";
        if (LibraryDefinesVersion(systemLibStdCxx, versionName))
            return $"{systemLibStdCxx} provides {versionName}; left as is";
        byte[] elf = File.ReadAllBytes(libraryPath);
        Outcome outcome = MarkVersionWeak(elf, versionName);
        if (outcome != Outcome.Patched) return $"{outcome}; left as is";
        string tmp = libraryPath + ".patching";
        File.WriteAllBytes(tmp, elf);
        // rename(2) replaces the target atomically; netstandard2.0's File.Move cannot overwrite.
        File.Replace(tmp, libraryPath, null);
        return $"marked {versionName} weak (system libstdc++ lacks it)";
    }

    static string ReadCString(byte[] data, long at)
    {
        long end = at;
        while (end < data.Length && data[end] != 0) end++;
        return Encoding.ASCII.GetString(data, (int)at, (int)(end - at));
    }

    static int IndexOf(byte[] haystack, byte[] needle)
    {
        // netstandard2.0 (the inline-task compiler's target) has no span search.
        for (int i = 0; i + needle.Length <= haystack.Length; i++)
        {
            int j = 0;
            while (j < needle.Length && haystack[i + j] == needle[j]) j++;
            if (j == needle.Length) return i;
        }
        return -1;
    }
}

#if !ELF_PATCHER_NO_MSBUILD
public class PatchLibTorchSharp : Microsoft.Build.Utilities.Task
{
    [Microsoft.Build.Framework.Required] public string Directory { get; set; } = "";
    public string VersionName { get; set; } = "GLIBCXX_3.4.32";

    public override bool Execute()
    {
        string lib = Path.Combine(Directory, "runtimes", "linux-x64", "native", "libLibTorchSharp.so");
        if (!File.Exists(lib)) return true;
        string result = ElfVersionNeedPatcher.PatchIfNeeded(lib, VersionName, ElfVersionNeedPatcher.FindSystemLibStdCxx());
        Log.LogMessage(Microsoft.Build.Framework.MessageImportance.High, $"libLibTorchSharp.so in {Directory}: {result}");
        return true;
    }
}
#endif
