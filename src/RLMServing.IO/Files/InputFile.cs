using System.Text;

namespace RLMServing.IO.Files;

/// <summary>
/// Checks a file the user named as input before reading it: it must be a regular file (a FIFO would hang the read,
/// /dev/zero would fill memory) of a size the reader can hold. Every loader of scenarios, sweeps, catalogs,
/// calibrations, traces and results goes through here.
/// </summary>
public static class InputFile
{
    /// <summary>Largest YAML or JSON document read whole (scenarios, sweeps, catalogs, calibrations, summaries): 16 MiB.</summary>
    public const long MaxDocumentBytes = 16L << 20;

    /// <summary>The file is a regular file (symbolic links followed), or one clear error naming it and what it is.</summary>
    public static void CheckRegular(string path, string? what = null)
    {
        var kind = FileProbe.Kind(path);
        string name = what is null ? path : $"{what} {path}";
        switch (kind)
        {
            case FileKind.Regular: return;
            case FileKind.Missing: throw new UserInputException($"{name}: file not found");
            case FileKind.DanglingLink: throw new UserInputException($"{name}: a symbolic link to a file that does not exist");
            default: throw new UserInputException($"{name}: is {FileProbe.Describe(kind)}, not a regular file");
        }
    }

    /// <summary>A regular file of at most <paramref name="maxBytes"/>, read whole as UTF-8 text.</summary>
    public static string ReadAllText(string path, long maxBytes = MaxDocumentBytes, string? what = null)
    {
        CheckRegular(path, what);
        long size = new FileInfo(path).Length;
        if (size > maxBytes)
            throw new UserInputException($"{(what is null ? path : $"{what} {path}")}: {size:N0} bytes; at most {maxBytes:N0} are read (docs/limits.md)");
        return File.ReadAllText(path, Encoding.UTF8);
    }
}
