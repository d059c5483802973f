namespace RLMServing.IO.Traces;

/// <summary>The request-trace formats by name, and format detection for <c>rlms trace stats</c> without --format.</summary>
public static class RequestTraceFormats
{
    public static IReadOnlyList<IRequestTraceSource> All { get; } =
    [
        new AzureSource(),
        new BurstGptSource(),
        new MooncakeSource(),
        new ServeGenSource(),
        new VidurSource(),
        new CanonicalCsvSource(),
        new ParquetSource(),
    ];

    public static IReadOnlyList<ITraceImporter> Importers { get; } = All.Select(s => (ITraceImporter)new RequestTraceImporter(s)).ToList();

    public static IRequestTraceSource Get(string format) =>
        All.FirstOrDefault(s => string.Equals(s.Format, format, StringComparison.OrdinalIgnoreCase))
        ?? throw new UserInputException($"--format: '{format}' is not a request-trace format; known: {string.Join(", ", All.Select(s => s.Format))}");

    /// <summary>Guesses the format from the extension, the ServeGen file names, or a CSV header.</summary>
    public static IRequestTraceSource Detect(string path)
    {
        string name = Path.GetFileName(path);
        if (Directory.Exists(path) || (name.StartsWith("chunk-", StringComparison.Ordinal) && (name.EndsWith("-trace.csv", StringComparison.Ordinal) || name.EndsWith("-dataset.json", StringComparison.Ordinal))))
            return Get("servegen");
        Files.InputFile.CheckRegular(path);
        string ext = Path.GetExtension(path).ToLowerInvariant();
        if (ext == ".parquet") return Get("parquet");
        if (ext is ".jsonl" or ".json") return Get("mooncake");
        if (ext == ".csv")
        {
            string first;
            using (var lines = new CsvLines(path)) first = lines.Next() ?? "";
            var header = CsvLines.Header(first);
            bool Has(string column) => header.ContainsKey(CsvLines.Normalize(column));
            if (Has("TIMESTAMP") && Has("ContextTokens")) return Get("azure");
            if (Has("Request tokens") && Has("Response tokens")) return Get("burstgpt");
            if (Has("arrived_at") || Has("num_prefill_tokens")) return Get("vidur");
            if (Has("arrival_time_s")) return Get("csv");
        }
        throw new UserInputException($"{path}: cannot tell the trace format; pass --format ({string.Join(", ", All.Select(s => s.Format))})");
    }

    public static SourceOptions ToSourceOptions(ImportOptions o) => new(o.Seed, o.DurationS, o.StartS, o.GrowSessionContext);
}

/// <summary>
/// Imports one request-trace format into the Parquet schema. Streams rows into a temporary file beside the output and
/// moves it into place only when every row was read, so a failed import leaves no partial file.
/// </summary>
public sealed class RequestTraceImporter(IRequestTraceSource source) : ITraceImporter
{
    public const long ProgressEveryRows = 1_000_000;

    public string Format => source.Format;

    public string Description => source.Description;

    public ImportResult Import(string inputPath, string outputPath, ImportOptions options)
    {
        if (options.Limit is < 0) throw new UserInputException($"--limit: must be zero or positive, got {options.Limit}");
        string output = Path.GetFullPath(outputPath);
        if (string.Equals(output, Path.GetFullPath(inputPath), StringComparison.Ordinal))
            throw new UserInputException($"{outputPath}: the output would overwrite the input");
        string directory = Path.GetDirectoryName(output)!;
        Directory.CreateDirectory(directory);
        Results.TempFiles.SweepStale(directory);
        string temp = Results.TempFiles.For(output);
        var context = new SourceContext(RequestTraceFormats.ToSourceOptions(options), new BadRows(inputPath, options.SkipBadRows));
        try
        {
            long rows;
            using (var writer = new RequestTraceWriter(temp))
            {
                foreach (var row in source.Read(inputPath, context))
                {
                    if (writer.Rows >= options.Limit) break;
                    writer.Write(row);
                    if (writer.Rows % ProgressEveryRows == 0) options.Progress?.Report(writer.Rows);
                }
                rows = writer.Rows;
                var metadata = new Dictionary<string, string>(context.Metadata)
                {
                    [RequestTraceSchema.KeySourceFormat] = source.Format,
                    [RequestTraceSchema.KeySourceFile] = Path.GetFileName(Path.TrimEndingDirectorySeparator(inputPath)),
                };
                if (context.Bad.Count > 0) metadata["rlms.skipped_rows"] = context.Bad.Count.ToString(System.Globalization.CultureInfo.InvariantCulture);
                writer.Complete(metadata);
            }
            File.Move(temp, output, overwrite: true);
            Results.TempFiles.Forget(temp);
            return new ImportResult(rows, context.Bad.Count, context.Bad.Lines, RequestTraceSchema.SchemaName);
        }
        catch
        {
            Results.TempFiles.Delete(temp);
            throw;
        }
    }
}
