using System.Runtime.InteropServices;

namespace AttnDistill;

/// <summary>
/// What a path names before it is opened: a FIFO opened for reading blocks in open() until a
/// writer comes (forever, and signals do not end a blocked open), and a character device such as
/// /dev/zero never ends. Inputs that should be files are checked here first. Uses Linux's statx
/// (its struct layout is the same on every architecture); elsewhere only folders are told apart.
/// </summary>
public static class RegularFile
{
    public enum Kind { Missing, Regular, Directory, Fifo, CharDevice, BlockDevice, Socket, Other }

    const int AtFdCwd = -100;
    const uint StatxType = 0x1;
    const int StatxModeOffset = 28;

    [DllImport("libc", EntryPoint = "statx", SetLastError = true)]
    static extern unsafe int Statx(int dirfd, string path, int flags, uint mask, byte* buffer);

    static bool _statxMissing;

    /// <summary>The kind of file a path names (symbolic links followed).</summary>
    public static Kind Of(string path)
    {
        if (Directory.Exists(path)) return Kind.Directory;
        if (!File.Exists(path)) return Kind.Missing;
        if (!OperatingSystem.IsLinux() || _statxMissing) return Kind.Regular;
        try
        {
            unsafe
            {
                byte* buffer = stackalloc byte[256];
                if (Statx(AtFdCwd, path, 0, StatxType, buffer) != 0) return Kind.Regular;   // let the open report it
                int type = *(ushort*)(buffer + StatxModeOffset) & 0xF000;
                return type switch
                {
                    0x8000 => Kind.Regular,
                    0x4000 => Kind.Directory,
                    0x1000 => Kind.Fifo,
                    0x2000 => Kind.CharDevice,
                    0x6000 => Kind.BlockDevice,
                    0xC000 => Kind.Socket,
                    _ => Kind.Other,
                };
            }
        }
        catch (Exception e) when (e is EntryPointNotFoundException or DllNotFoundException)
        {
            _statxMissing = true;
            return Kind.Regular;
        }
    }

    /// <summary>
    /// Null when the path is a regular file; otherwise why it is not (for one-line errors: "is a
    /// folder", "is a FIFO (named pipe)", "does not exist").
    /// </summary>
    public static string? Problem(string path) => Of(path) switch
    {
        Kind.Regular => null,
        Kind.Missing => "does not exist",
        Kind.Directory => "is a folder, not a file",
        Kind.Fifo => "is a FIFO (named pipe), not a regular file: reading it could block forever",
        Kind.CharDevice => "is a character device, not a regular file",
        Kind.BlockDevice => "is a block device, not a regular file",
        Kind.Socket => "is a socket, not a regular file",
        _ => "is not a regular file",
    };
}
