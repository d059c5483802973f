using System.Runtime.InteropServices;

namespace RLMServing.IO.Files;

/// <summary>
/// The kind of a path without opening it: opening a FIFO blocks until a writer comes, and a character device such as
/// /dev/zero reads for ever, so inputs and outputs are classified before anything touches them.
/// </summary>
public static class FileProbe
{
    public static FileKind Kind(string path)
    {
        if (!OperatingSystem.IsWindows())
        {
            if (Stat(path, out var st) == 0) return FromMode(st.Mode);
            return LStat(path, out _) == 0 ? FileKind.DanglingLink : FileKind.Missing;
        }
        if (Directory.Exists(path)) return FileKind.Directory;
        if (File.Exists(path)) return FileKind.Regular;
        return new FileInfo(path).LinkTarget is not null ? FileKind.DanglingLink : FileKind.Missing;
    }

    /// <summary>How an error names a kind: "a FIFO", "a character device" ...</summary>
    public static string Describe(FileKind kind) => kind switch
    {
        FileKind.Missing => "missing",
        FileKind.Regular => "a regular file",
        FileKind.Directory => "a folder",
        FileKind.Fifo => "a FIFO (named pipe)",
        FileKind.CharacterDevice => "a character device",
        FileKind.BlockDevice => "a block device",
        FileKind.Socket => "a socket",
        FileKind.DanglingLink => "a symbolic link to nothing",
        _ => "not a regular file",
    };

    // The file-type bits of stat's st_mode as the .NET runtime's native shim reports them (the POSIX values).
    private static FileKind FromMode(int mode) => (mode & 0xF000) switch
    {
        0x8000 => FileKind.Regular,
        0x4000 => FileKind.Directory,
        0x1000 => FileKind.Fifo,
        0x2000 => FileKind.CharacterDevice,
        0x6000 => FileKind.BlockDevice,
        0xC000 => FileKind.Socket,
        _ => FileKind.Other,
    };

    /// <summary>
    /// The leading fields of the runtime shim's FileStatus (flags, mode, ...), padded well past its full size: only
    /// the mode is read, and the padding keeps a larger struct in a later runtime from writing past this one.
    /// </summary>
    [StructLayout(LayoutKind.Sequential)]
    private struct NativeFileStatus
    {
        public int Flags;
        public int Mode;
        public Padding Rest;
    }

    [System.Runtime.CompilerServices.InlineArray(32)]
    private struct Padding
    {
        private long _element;
    }

    // System.Native is the runtime's own portable POSIX layer (every .NET install on Linux and macOS has it); its
    // FileStatus has the same layout on every platform, unlike libc's struct stat.
    [DllImport("libSystem.Native", EntryPoint = "SystemNative_Stat")]
    private static extern int Stat([MarshalAs(UnmanagedType.LPUTF8Str)] string path, out NativeFileStatus output);

    [DllImport("libSystem.Native", EntryPoint = "SystemNative_LStat")]
    private static extern int LStat([MarshalAs(UnmanagedType.LPUTF8Str)] string path, out NativeFileStatus output);
}
