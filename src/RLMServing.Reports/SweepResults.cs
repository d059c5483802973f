using System.Reflection;
using System.Text.Json;
using System.Text.Json.Serialization;
using Parquet;
using Parquet.Schema;
using RLMServing.IO.ParquetFiles;
using RLMServing.Metrics;

namespace RLMServing.Reports;

/// <summary>The parts of sweep.json a report uses: the sweep's name, its axes in order and its Pareto latency metric.</summary>
public sealed record SweepManifestInfo
{
    [JsonPropertyName("name")] public string? Name { get; init; }
    [JsonPropertyName("axes")] public IReadOnlyList<string>? Axes { get; init; }
    [JsonPropertyName("seeds")] public IReadOnlyList<long>? Seeds { get; init; }
    [JsonPropertyName("pareto_latency")] public string? ParetoLatency { get; init; }

    /// <summary>sweep.json if it is there (null if not); a malformed one is a user error.</summary>
    public static SweepManifestInfo? Read(string path)
    {
        if (!File.Exists(path)) return null;
        try { return JsonSerializer.Deserialize<SweepManifestInfo>(RLMServing.IO.Files.InputFile.ReadAllText(path)); }
        catch (JsonException e) { throw new UserInputException($"{path}: not a sweep manifest ({e.Message})"); }
    }
}

/// <summary>
/// results.parquet of a sweep, one row per configuration and seed: config_id, seed, one column per axis (dotted
/// scenario key), the summary.json metrics under their names, capacity and cost columns, pareto. Numbers (and
/// booleans, as 0/1) are read as doubles, text as strings; configurations are averaged over their seeds.
/// </summary>
public sealed class SweepResults
{
    public const string ConfigId = "config_id";
    public const string Seed = "seed";
    public const string Pareto = "pareto";

    /// <summary>Columns that are outputs, never axes: every summary.json key and the capacity/cost columns.</summary>
    public static readonly IReadOnlySet<string> KnownMetrics = typeof(RunSummary).GetProperties()
        .Select(p => p.GetCustomAttribute<JsonPropertyNameAttribute>()?.Name).OfType<string>()
        .Concat(["capacity.max_rate", "capacity.gpus_per_replica", "capacity.gpus_for_target", "cost.usd_per_million_tokens", Pareto])
        .ToHashSet();

    /// <summary>An output column: a summary key, a percentile key (p95_ttft_ms), steady_state.*, capacity.* or cost.*.</summary>
    public static bool IsOutput(string column) =>
        KnownMetrics.Contains(column) || RLMServing.Metrics.MetricPercentiles.TryParseKey(column, out _, out _)
        || column.StartsWith("steady_state.", StringComparison.Ordinal) || column.StartsWith("capacity.", StringComparison.Ordinal)
        || column.StartsWith("cost.", StringComparison.Ordinal);

    private SweepResults(string path, int rows, IReadOnlyList<string> columns, Dictionary<string, double?[]> numbers,
        Dictionary<string, string?[]> texts, IReadOnlyList<string> axes, string? paretoLatency)
    {
        Path = path;
        RowCount = rows;
        Columns = columns;
        _numbers = numbers;
        _texts = texts;
        Axes = axes;
        ParetoLatency = paretoLatency;
    }

    private readonly Dictionary<string, double?[]> _numbers;
    private readonly Dictionary<string, string?[]> _texts;

    public string Path { get; }
    public int RowCount { get; }
    public IReadOnlyList<string> Columns { get; }
    public IReadOnlyList<string> Axes { get; }
    public string? ParetoLatency { get; }

    public bool Has(string column) => _numbers.ContainsKey(column) || _texts.ContainsKey(column);
    public bool IsNumeric(string column) => _numbers.ContainsKey(column);
    public double?[]? Numbers(string column) => _numbers.GetValueOrDefault(column);

    /// <summary>A cell as text for labels and hover (numbers in their shortest round-trip form).</summary>
    public string Text(string column, int row) =>
        _texts.TryGetValue(column, out var t) ? t[row] ?? "" :
        _numbers.TryGetValue(column, out var n) && n[row] is { } v ? Format.Number(v) : "";

    /// <summary>Seeds of one configuration, by config_id (every row its own configuration without that column).</summary>
    public IReadOnlyList<int[]> Configurations()
    {
        if (_numbers.GetValueOrDefault(ConfigId) is not { } ids) return Enumerable.Range(0, RowCount).Select(i => new[] { i }).ToList();
        return Enumerable.Range(0, RowCount).GroupBy(i => ids[i] ?? -1).OrderBy(g => g.Key).Select(g => g.ToArray()).ToList();
    }

    /// <summary>Mean over the rows (seeds) given, ignoring nulls and NaN; null when none has a value.</summary>
    public double? Mean(string column, IEnumerable<int> rows)
    {
        if (_numbers.GetValueOrDefault(column) is not { } col) return null;
        var values = rows.Select(r => col[r]).Where(v => v is { } x && double.IsFinite(x)).Select(v => v!.Value).ToList();
        return values.Count == 0 ? null : values.Average();
    }

    public static async Task<SweepResults> ReadAsync(string path, SweepManifestInfo? manifest)
    {
        RLMServing.IO.ParquetFiles.ParquetColumns.CheckFile(path);
        var numbers = new Dictionary<string, double?[]>();
        var texts = new Dictionary<string, string?[]>();
        var columns = new List<string>();
        int rows = 0;
        try
        {
            await using var stream = File.OpenRead(path);
            await using var reader = await ParquetReader.CreateAsync(stream);
            var fields = reader.Schema.DataFields;
            var numberParts = fields.ToDictionary(f => f.Name, _ => new List<double?>());
            var textParts = fields.ToDictionary(f => f.Name, _ => new List<string?>());
            for (int gi = 0; gi < reader.RowGroupCount; gi++)
            {
                using var g = reader.OpenRowGroupReader(gi);
                rows += (int)g.RowCount;
                foreach (var f in fields)
                {
                    var t = Nullable.GetUnderlyingType(f.ClrType) ?? f.ClrType;
                    if (IsText(t)) { textParts[f.Name].AddRange(await g.ReadStrings(f)); continue; }
                    numberParts[f.Name].AddRange(await ReadNumbers(g, f, t, path));
                }
            }
            foreach (var f in fields)
            {
                columns.Add(f.Name);
                if (IsText(Nullable.GetUnderlyingType(f.ClrType) ?? f.ClrType)) texts[f.Name] = textParts[f.Name].ToArray();
                else numbers[f.Name] = numberParts[f.Name].ToArray();
            }
        }
        catch (Exception e) when (e is not UserInputException and not OutOfMemoryException)
        {
            throw new UserInputException($"{path}: not a readable Parquet results file ({RLMServing.IO.Files.ErrorText.Clip(e.Message.ReplaceLineEndings(" "), 120)})");
        }
        if (rows == 0) throw new UserInputException($"{path}: no rows");
        var axes = manifest?.Axes is { Count: > 0 } named ? named : columns.Where(c => c != ConfigId && c != Seed && !IsOutput(c)).ToList();
        foreach (var a in axes)
            if (!columns.Contains(a)) throw new UserInputException($"{path}: axis '{a}' (from sweep.json) has no column");
        return new SweepResults(path, rows, columns, numbers, texts, axes, manifest?.ParetoLatency);
    }

    private static async Task<double?[]> ReadNumbers(ParquetRowGroupReader g, DataField f, Type t, string path)
    {
        if (t == typeof(double)) return f.IsNullable ? await g.ReadNullable<double>(f) : Lift(await g.Read<double>(f), v => v);
        if (t == typeof(float)) return f.IsNullable ? (await g.ReadNullable<float>(f)).Select(v => (double?)v).ToArray() : Lift(await g.Read<float>(f), v => v);
        if (t == typeof(int)) return f.IsNullable ? (await g.ReadNullable<int>(f)).Select(v => (double?)v).ToArray() : Lift(await g.Read<int>(f), v => v);
        if (t == typeof(long)) return f.IsNullable ? (await g.ReadNullable<long>(f)).Select(v => (double?)v).ToArray() : Lift(await g.Read<long>(f), v => v);
        if (t == typeof(bool)) return f.IsNullable ? (await g.ReadNullable<bool>(f)).Select(v => v is { } b ? (double?)(b ? 1 : 0) : null).ToArray() : Lift(await g.Read<bool>(f), v => v ? 1 : 0);
        throw new UserInputException($"{path}: column '{f.Name}' has an unsupported type {t.Name}");
    }

    /// <summary>Parquet.Net reports string columns of a read file as ReadOnlyMemory&lt;char&gt;.</summary>
    private static bool IsText(Type t) => t == typeof(string) || t == typeof(ReadOnlyMemory<char>);

    private static double?[] Lift<T>(T[] values, Func<T, double> f) => values.Select(v => (double?)f(v)).ToArray();
}
