using Parquet;
using RLMServing.IO.ParquetFiles;
using Parquet.Serialization;

namespace RLMServing.Profiling.Traces;

/// <summary>
/// Appends rows to a Parquet trace file, one row group per call, so an interrupted run keeps every row written
/// before it. The file metadata (device, versions, dtype, command, ...) is written with every append.
/// </summary>
public sealed class TraceWriter<T>(string path, IReadOnlyDictionary<string, string> metadata) where T : new()
{
    private bool _created;

    public string Path { get; } = path;
    public long Rows { get; private set; }

    public void Append(IReadOnlyCollection<T> rows)
    {
        if (rows.Count == 0) return;
        var options = new ParquetOptions { Append = _created };
        ParquetSerializer.SerializeAsync(rows, Path, options, metadata).GetAwaiter().GetResult();
        _created = true;
        Rows += rows.Count;
    }

    public void Append(T row) => Append([row]);
}

/// <summary>Reads trace files back (tests, calibration, <c>rlms trace stats</c>).</summary>
public static class TraceReader
{
    public static IList<T> Read<T>(string path) where T : class, new()
    {
        ParquetColumns.CheckFile(path);
        return ParquetColumns.Guard(path, () => ParquetSerializer.DeserializeAsync<T>(path).GetAwaiter().GetResult().Data);
    }

    /// <summary>The names of the file's columns.</summary>
    public static IReadOnlyList<string> Columns(string path) => WithReader(path, r => r.Schema.DataFields.Select(f => f.Name).ToList());

    public static Dictionary<string, string> Metadata(string path) => WithReader(path, r => new Dictionary<string, string>(r.CustomMetadata));

    private static T WithReader<T>(string path, Func<ParquetReader, T> read)
    {
        var reader = ParquetColumns.Open(path);
        try { return ParquetColumns.Guard(path, () => read(reader)); }
        finally { reader.DisposeAsync().AsTask().GetAwaiter().GetResult(); }
    }
}

/// <summary>Keys of the file metadata every trace carries (docs/traces.md).</summary>
public static class TraceMetadata
{
    public const string Schema = "rlms.schema";
    public const string SchemaVersion = "rlms.schema_version";
    public const string Device = "rlms.device";
    public const string Driver = "rlms.driver_version";
    public const string Cuda = "rlms.cuda_version";
    public const string Ort = "rlms.ort_version";
    public const string Dtype = "rlms.dtype";
    public const string Architecture = "rlms.architecture";
    public const string Host = "rlms.host";
    public const string Date = "rlms.date";
    public const string Command = "rlms.command";
    public const string TimeUnit = "rlms.time_unit";
    public const string Source = "rlms.source";
    public const string SourceCommit = "rlms.source_commit";
    public const string SourceLicense = "rlms.source_license";
    public const string SourceFiles = "rlms.source_files";
    public const string UnitsConverted = "rlms.units_converted";
}
