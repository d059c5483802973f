using System.Globalization;
using RLMServing.IO.Traces;
using RLMServing.Profiling.Traces;

namespace RLMServing.Profiling.Importers;

/// <summary>The GPU-profile importers, which the CLI adds to its <see cref="TraceImporterRegistry"/>.</summary>
public static class GpuProfileImporters
{
    public static IReadOnlyList<ITraceImporter> All { get; } =
    [
        new VidurProfileImporter(),
        new LlmServingSimProfileImporter(),
        new LlmServingSimV0ProfileImporter(),
        new SplitwisePerfImporter(),
        new DistServeProfileImporter(),
    ];
}

/// <summary>A small CSV table with a header; the public profiles have no quoted fields.</summary>
internal sealed class CsvTable
{
    public string Path { get; }
    public string[] Header { get; }
    private readonly Dictionary<string, int> _index;

    public CsvTable(string path)
    {
        Path = path;
        using var reader = new StreamReader(path);
        var header = reader.ReadLine() ?? throw new UserInputException($"{path}: empty file");
        Header = header.Split(',');
        _index = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < Header.Length; i++) _index.TryAdd(Header[i], i);
    }

    public bool Has(string column) => _index.ContainsKey(column);

    public int Column(string column) =>
        _index.TryGetValue(column, out var i) ? i : throw new UserInputException($"{Path}: column '{column}' not found");

    /// <summary>Data lines with their 1-based line numbers.</summary>
    public IEnumerable<(long Line, string[] Cells)> Rows()
    {
        long line = 1;
        foreach (var text in File.ReadLines(Path).Skip(1))
        {
            line++;
            if (text.Length == 0) continue;
            yield return (line, text.Split(','));
        }
    }
}

/// <summary>Shared plumbing: bad-row handling, unit conversion, atomic writes.</summary>
internal abstract class GpuProfileImporterBase : ITraceImporter
{
    public abstract string Format { get; }
    public abstract string Description { get; }
    public abstract ImportResult Import(string inputPath, string outputPath, ImportOptions options);

    protected const double UsPerMs = 1000.0;

    protected static string Require(string inputPath)
    {
        if (!File.Exists(inputPath) && !Directory.Exists(inputPath))
            throw new UserInputException($"{inputPath}: file or folder not found");
        return inputPath;
    }

    protected static double Num(CsvTable t, string[] cells, string column, long line)
    {
        var i = t.Column(column);
        if (i >= cells.Length || !double.TryParse(cells[i], NumberStyles.Float, CultureInfo.InvariantCulture, out var v))
            throw new RowException($"{t.Path}: line {line}: column '{column}': not a number: '{(i < cells.Length ? cells[i] : "")}'", line);
        return v;
    }

    protected static double? NumOrNull(CsvTable t, string[] cells, string column)
    {
        var i = t.Column(column);
        return i < cells.Length && double.TryParse(cells[i], NumberStyles.Float, CultureInfo.InvariantCulture, out var v) ? v : null;
    }

    protected static string Str(CsvTable t, string[] cells, string column)
    {
        var i = t.Column(column);
        return i < cells.Length ? cells[i] : "";
    }

    /// <summary>Writes rows to a temporary file beside the output and moves it into place only on success.</summary>
    protected static void WriteAtomically<T>(string outputPath, IReadOnlyCollection<T> rows, Dictionary<string, string> metadata) where T : new()
    {
        var dir = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(outputPath))!;
        Directory.CreateDirectory(dir);
        RLMServing.IO.Results.TempFiles.SweepStale(dir);
        var tmp = RLMServing.IO.Results.TempFiles.For(outputPath);
        try
        {
            new TraceWriter<T>(tmp, metadata).Append(rows);
            File.Move(tmp, outputPath, overwrite: true);
        }
        finally
        {
            RLMServing.IO.Results.TempFiles.Delete(tmp);
        }
    }

    /// <summary>The import as a command line (what <c>rlms trace import</c> runs), for the trace's provenance.</summary>
    protected string CommandFor(string inputPath, string outputPath) => $"rlms trace import --format {Format} {inputPath} --out {outputPath}";

    protected static Dictionary<string, string> Metadata(string command, string schema, string source, string commit, string license, IEnumerable<string> files,
        string units, string device = "", string dtype = "", string architecture = "") => new()
    {
        [TraceMetadata.Schema] = schema,
        [TraceMetadata.SchemaVersion] = "1",
        [TraceMetadata.Source] = source,
        [TraceMetadata.SourceCommit] = commit,
        [TraceMetadata.SourceLicense] = license,
        [TraceMetadata.SourceFiles] = string.Join(";", files),
        [TraceMetadata.UnitsConverted] = units,
        [TraceMetadata.TimeUnit] = "us",
        [TraceMetadata.Device] = device,
        [TraceMetadata.Dtype] = dtype,
        [TraceMetadata.Architecture] = architecture,
        [TraceMetadata.Date] = DateTime.UtcNow.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture),
        [TraceMetadata.Command] = command,
    };

    /// <summary>Runs <paramref name="read"/> over rows, skipping bad ones when allowed and stopping at the limit.</summary>
    protected static List<T> Collect<T>(IEnumerable<Func<IEnumerable<T>>> rowsPerLine, ImportOptions options, List<long> skipped)
    {
        var result = new List<T>();
        foreach (var line in rowsPerLine)
        {
            if (options.Limit is long limit && result.Count >= limit) break;
            try
            {
                result.AddRange(line());
            }
            catch (RowException e) when (options.SkipBadRows)
            {
                skipped.Add(e.Line);
            }
            if (result.Count % 10000 == 0) options.Progress?.Report(result.Count);
        }
        if (options.Limit is long l && result.Count > l) result.RemoveRange((int)l, result.Count - (int)l);
        options.Progress?.Report(result.Count);
        return result;
    }

    protected static string RelativeName(string root, string file) =>
        Directory.Exists(root) ? System.IO.Path.GetRelativePath(root, file).Replace('\\', '/') : System.IO.Path.GetFileName(file);

    protected static IEnumerable<string> Files(string inputPath, string pattern) =>
        Directory.Exists(inputPath)
            ? Directory.EnumerateFiles(inputPath, pattern, SearchOption.AllDirectories).Order(StringComparer.Ordinal)
            : [inputPath];
}

/// <summary>A malformed input row, with its line number.</summary>
internal sealed class RowException(string message, long line) : UserInputException(message)
{
    public long Line { get; } = line;
}
