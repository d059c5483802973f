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

    public static ITraceImporter Get(string format) =>
        All.FirstOrDefault(i => string.Equals(i.Format, format, StringComparison.OrdinalIgnoreCase))
        ?? throw new UserInputException(
            $"--format: unknown format '{format}'; known formats: {string.Join(", ", All.Select(i => i.Format))}");
}
