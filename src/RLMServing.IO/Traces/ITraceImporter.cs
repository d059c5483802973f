namespace RLMServing.IO.Traces;

/// <summary>
/// Options common to every importer. Seed, DurationS, StartS and GrowSessionContext are read only by the formats that
/// need them (the ServeGen generator; multi-turn session context growth).
/// </summary>
public sealed record ImportOptions(
    bool SkipBadRows = false,
    long? Limit = null,
    IProgress<long>? Progress = null,
    int Seed = 0,
    double? DurationS = null,
    double StartS = 0,
    bool? GrowSessionContext = null);

/// <summary>What an import did: rows written, and the lines skipped when bad rows were allowed.</summary>
public sealed record ImportResult(long Rows, long SkippedRows, IReadOnlyList<long> SkippedLines, string Schema);

/// <summary>
/// Turns one public or user file format into one of the project's Parquet trace schemas
/// (request traces, operator traces, iteration traces). Registered by name in <see cref="TraceImporters"/>.
/// Implementations write to a temporary file and move it into place only on success.
/// </summary>
public interface ITraceImporter
{
    /// <summary>The value of <c>--format</c>.</summary>
    string Format { get; }

    string Description { get; }

    ImportResult Import(string inputPath, string outputPath, ImportOptions options);
}

/// <summary>The registry behind <c>rlms trace import --format F</c>.</summary>
public static class TraceImporters
{
    // Request-trace importers (issue 3) and GPU-profile importers (issue 4) each add their entries here.
    public static IReadOnlyList<ITraceImporter> All { get; } =
    [
        .. RequestTraceFormats.Importers,
    ];

    // Importers from projects this one cannot reference (the GPU-profile importers live in RLMServing.Profiling,
    // which references IO); the CLI registers them at startup.
    private static readonly List<ITraceImporter> Registered = [];

    /// <summary>Adds importers to the registry (formats already known are kept, not replaced).</summary>
    public static void Register(IEnumerable<ITraceImporter> importers)
    {
        lock (Registered)
            foreach (var i in importers)
                if (!Everything.Any(e => string.Equals(e.Format, i.Format, StringComparison.OrdinalIgnoreCase))) Registered.Add(i);
    }

    /// <summary><see cref="All"/> plus the registered importers.</summary>
    public static IReadOnlyList<ITraceImporter> Everything
    {
        get { lock (Registered) return [.. All, .. Registered]; }
    }

    public static ITraceImporter Get(string format) =>
        Everything.FirstOrDefault(i => string.Equals(i.Format, format, StringComparison.OrdinalIgnoreCase))
        ?? throw new UserInputException(
            $"--format: unknown format '{format}'; known formats: {string.Join(", ", Everything.Select(i => i.Format))}");
}
