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
/// (request traces, operator traces, iteration traces). Registered by name in a <see cref="TraceImporterRegistry"/>.
/// Implementations write to a temporary file and move it into place only on success.
/// </summary>
public interface ITraceImporter
{
    /// <summary>The value of <c>--format</c>.</summary>
    string Format { get; }

    string Description { get; }

    ImportResult Import(string inputPath, string outputPath, ImportOptions options);
}
