using System.Text;
using RLMServing.IO.Files;

namespace RLMServing.IO.Results;

/// <summary>
/// Where a verb may write, checked before any work: only into a folder or a regular file the user named (or the
/// default results folder), never onto a device, FIFO, socket or a symbolic link to nothing, with names the file
/// system takes and a destination this process can write. A scenario's or sweep's <c>name</c> is a name, never a path.
/// </summary>
public static class OutputPath
{
    /// <summary>Longest file or folder name (bytes of UTF-8), as Linux file systems allow.</summary>
    public const int MaxNameBytes = 255;

    /// <summary>Longest path (bytes of UTF-8), as Linux allows.</summary>
    public const int MaxPathBytes = 4095;

    /// <summary>A folder to write into: an existing writable folder, or a new one under a writable folder. Returns the full path.</summary>
    public static string CheckFolder(string path, string option)
    {
        var full = CheckLength(path, option);
        var kind = FileProbe.Kind(full);
        switch (kind)
        {
            case FileKind.Directory:
                ProbeWritable(full, option, path);
                return full;
            case FileKind.Missing:
                ProbeWritable(ExistingAncestor(full, option, path), option, path);
                return full;
            default:
                throw new UserInputException($"{option} {path}: is {FileProbe.Describe(kind)}; expected a folder (or a name for a new one)");
        }
    }

    /// <summary>A file to write: an existing regular file (replaced whole) or a new one in a writable folder. Returns the full path.</summary>
    public static string CheckFile(string path, string option)
    {
        var full = CheckLength(path, option);
        var kind = FileProbe.Kind(full);
        switch (kind)
        {
            case FileKind.Regular:
                ProbeWritable(Path.GetDirectoryName(full)!, option, path);
                return full;
            case FileKind.Missing:
                ProbeWritable(ExistingAncestor(full, option, path), option, path);
                return full;
            case FileKind.Directory:
                throw new UserInputException($"{option} {path}: is a folder; expected a file name");
            default:
                throw new UserInputException($"{option} {path}: is {FileProbe.Describe(kind)}; rlms writes only regular files");
        }
    }

    /// <summary>
    /// A name that becomes a folder under results/ (a scenario's or sweep's <c>name</c>): one path component, no
    /// separators, not . or .., not rooted, at most <see cref="MaxNameBytes"/> bytes.
    /// </summary>
    public static string CheckName(string name, string where)
    {
        string? problem =
            name.Length == 0 ? "is empty" :
            name is "." or ".." ? $"'{name}' is not a name" :
            name.IndexOfAny(['/', '\\']) >= 0 || Path.IsPathRooted(name) ? $"'{ErrorText.Clip(name)}' is a path; a name is one word of a folder name (no / or \\)" :
            name.IndexOfAny(Path.GetInvalidFileNameChars()) >= 0 || name.Any(char.IsControl) ? $"'{ErrorText.Clip(name)}' has characters a folder name cannot have" :
            Encoding.UTF8.GetByteCount(name) > MaxNameBytes ? $"is {Encoding.UTF8.GetByteCount(name)} bytes long; at most {MaxNameBytes}" :
            null;
        return problem is null ? name : throw new UserInputException($"{where}: {problem}");
    }

    private static string CheckLength(string path, string option)
    {
        if (string.IsNullOrWhiteSpace(path)) throw new UserInputException($"{option}: empty path");
        if (path.IndexOf('\0') >= 0) throw new UserInputException($"{option}: the path holds a NUL character");
        var full = Path.GetFullPath(path);
        if (Encoding.UTF8.GetByteCount(full) > MaxPathBytes)
            throw new UserInputException($"{option} {ErrorText.Clip(path)}: the path is {Encoding.UTF8.GetByteCount(full)} bytes long; at most {MaxPathBytes}");
        foreach (var part in full.Split(Path.DirectorySeparatorChar, StringSplitOptions.RemoveEmptyEntries))
            if (Encoding.UTF8.GetByteCount(part) > MaxNameBytes)
                throw new UserInputException($"{option} {ErrorText.Clip(path)}: the name '{ErrorText.Clip(part)}' is {Encoding.UTF8.GetByteCount(part)} bytes long; at most {MaxNameBytes}");
        return full;
    }

    /// <summary>The nearest folder above a path that does not exist yet; what lies on the way must be folders.</summary>
    private static string ExistingAncestor(string full, string option, string path)
    {
        for (var dir = Path.GetDirectoryName(full); dir is not null; dir = Path.GetDirectoryName(dir))
        {
            var kind = FileProbe.Kind(dir);
            if (kind == FileKind.Directory) return dir;
            if (kind != FileKind.Missing) throw new UserInputException($"{option} {path}: {dir} is {FileProbe.Describe(kind)}, not a folder");
        }
        throw new UserInputException($"{option} {path}: no existing folder above it");
    }

    /// <summary>Creates and deletes a file in the folder: read-only file systems and folders refuse it here, before the work.</summary>
    private static void ProbeWritable(string dir, string option, string path)
    {
        var probe = Path.Combine(dir, $".rlms-probe-{Environment.ProcessId}-{Guid.NewGuid():N}");
        try
        {
            using (new FileStream(probe, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1, FileOptions.DeleteOnClose)) { }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new UserInputException($"{option} {path}: cannot write in {dir} ({e.Message.TrimEnd('.')})");
        }
    }
}
