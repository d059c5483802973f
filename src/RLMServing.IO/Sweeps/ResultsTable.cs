using System.Reflection;
using System.Text.Json.Serialization;
using Parquet;
using Parquet.Schema;
using RLMServing.IO.ParquetFiles;
using RLMServing.Metrics;

namespace RLMServing.IO.Sweeps;

/// <summary>The value types a results column can hold (Parquet physical types, nullable or not).</summary>
public enum ColumnKind { Int32, Int64, Double, Bool, String, NullableInt32, NullableInt64, NullableDouble, NullableBool }

/// <summary>One column of results.parquet.</summary>
public sealed record ResultColumn(string Name, ColumnKind Kind)
{
    public DataField Field() => Kind switch
    {
        ColumnKind.Int32 => new DataField<int>(Name),
        ColumnKind.Int64 => new DataField<long>(Name),
        ColumnKind.Double => new DataField<double>(Name),
        ColumnKind.Bool => new DataField<bool>(Name),
        ColumnKind.String => new DataField<string>(Name),
        ColumnKind.NullableInt32 => new DataField<int?>(Name),
        ColumnKind.NullableInt64 => new DataField<long?>(Name),
        ColumnKind.NullableDouble => new DataField<double?>(Name),
        ColumnKind.NullableBool => new DataField<bool?>(Name),
        _ => throw new ArgumentOutOfRangeException(nameof(Kind)),
    };

    public static ColumnKind KindOf(Type t)
    {
        var inner = Nullable.GetUnderlyingType(t);
        return (inner ?? t) switch
        {
            var x when x == typeof(int) => inner is null ? ColumnKind.Int32 : ColumnKind.NullableInt32,
            var x when x == typeof(long) => inner is null ? ColumnKind.Int64 : ColumnKind.NullableInt64,
            var x when x == typeof(double) => inner is null ? ColumnKind.Double : ColumnKind.NullableDouble,
            var x when x == typeof(bool) => inner is null ? ColumnKind.Bool : ColumnKind.NullableBool,
            var x when x == typeof(string) => ColumnKind.String,
            _ => throw new NotSupportedException($"no results column type for {t}"),
        };
    }
}

/// <summary>Rows of named, typed columns, written to and read from Parquet in one row group.</summary>
public sealed class ResultsTable(IReadOnlyList<ResultColumn> columns, List<object?[]> rows)
{
    public IReadOnlyList<ResultColumn> Columns { get; } = columns;
    public List<object?[]> Rows { get; } = rows;

    public int IndexOf(string name)
    {
        for (int i = 0; i < Columns.Count; i++) if (Columns[i].Name == name) return i;
        return -1;
    }

    public async Task WriteAsync(string path, IReadOnlyDictionary<string, string> metadata)
    {
        var schema = new ParquetSchema(Columns.Select(c => (Field)c.Field()).ToArray());
        var fields = schema.DataFields;
        await ParquetColumns.WriteFileAsync(path, schema, metadata, async g =>
        {
            for (int c = 0; c < Columns.Count; c++)
            {
                var col = Rows.Select(r => r[c]);
                var f = fields[c];
                await (Columns[c].Kind switch
                {
                    ColumnKind.Int32 => g.Write(f, col.Select(v => (int)v!).ToArray()),
                    ColumnKind.Int64 => g.Write(f, col.Select(v => (long)v!).ToArray()),
                    ColumnKind.Double => g.Write(f, col.Select(v => (double)v!).ToArray()),
                    ColumnKind.Bool => g.Write(f, col.Select(v => (bool)v!).ToArray()),
                    ColumnKind.String => g.WriteStrings(f, col.Select(v => (string?)v).ToArray()),
                    ColumnKind.NullableInt32 => g.WriteNullable(f, col.Select(v => (int?)v).ToArray()),
                    ColumnKind.NullableInt64 => g.WriteNullable(f, col.Select(v => (long?)v).ToArray()),
                    ColumnKind.NullableDouble => g.WriteNullable(f, col.Select(v => (double?)v).ToArray()),
                    ColumnKind.NullableBool => g.WriteNullable(f, col.Select(v => (bool?)v).ToArray()),
                    _ => throw new ArgumentOutOfRangeException(),
                });
            }
        });
    }

    public static Task<(ResultsTable Table, IReadOnlyDictionary<string, string> Metadata)> ReadAsync(string path)
    {
        ParquetColumns.CheckFile(path);
        return ParquetColumns.GuardAsync(path, () => ReadCheckedAsync(path));
    }

    private static async Task<(ResultsTable Table, IReadOnlyDictionary<string, string> Metadata)> ReadCheckedAsync(string path)
    {
        await using var stream = File.OpenRead(path);
        await using var reader = await ParquetReader.CreateAsync(stream);
        var fields = reader.Schema.DataFields;
        var columns = fields.Select(f => new ResultColumn(f.Name, Kind(f, path))).ToList();
        var rows = new List<object?[]>();
        for (int gi = 0; gi < reader.RowGroupCount; gi++)
        {
            using var g = reader.OpenRowGroupReader(gi);
            var data = new Array[fields.Length];
            for (int c = 0; c < fields.Length; c++)
                data[c] = columns[c].Kind switch
                {
                    ColumnKind.Int32 => await g.Read<int>(fields[c]),
                    ColumnKind.Int64 => await g.Read<long>(fields[c]),
                    ColumnKind.Double => await g.Read<double>(fields[c]),
                    ColumnKind.Bool => await g.Read<bool>(fields[c]),
                    ColumnKind.String => await g.ReadStrings(fields[c]),
                    ColumnKind.NullableInt32 => await g.ReadNullable<int>(fields[c]),
                    ColumnKind.NullableInt64 => await g.ReadNullable<long>(fields[c]),
                    ColumnKind.NullableDouble => await g.ReadNullable<double>(fields[c]),
                    ColumnKind.NullableBool => await g.ReadNullable<bool>(fields[c]),
                    _ => throw new ArgumentOutOfRangeException(),
                };
            for (long i = 0; i < g.RowCount; i++)
                rows.Add(data.Select(a => a.GetValue(i)).ToArray());
        }
        return (new ResultsTable(columns, rows), new Dictionary<string, string>(reader.CustomMetadata ?? new Dictionary<string, string>()));
    }

    private static ColumnKind Kind(DataField f, string path)
    {
        if (f.ClrType == typeof(string) || f.ClrType == typeof(ReadOnlyMemory<char>)) return ColumnKind.String;
        try
        {
            var kind = ResultColumn.KindOf(f.ClrType);
            return !f.IsNullable || kind == ColumnKind.String ? kind : ResultColumn.KindOf(typeof(Nullable<>).MakeGenericType(f.ClrType));
        }
        catch (NotSupportedException) { throw new UserInputException($"{path}: column '{f.Name}' has an unsupported type {f.ClrType.Name}"); }
    }
}

/// <summary>
/// The results.parquet contract: config_id, seed, one column per axis (dotted key), every summary.json metric
/// under its summary.json name (nested objects flattened with dots), then capacity and cost columns.
/// </summary>
public static class SweepColumns
{
    public const string ConfigId = "config_id";
    public const string Seed = "seed";
    public const string MaxRate = "capacity.max_rate";
    public const string GpusPerReplica = "capacity.gpus_per_replica";
    public const string GpusForTarget = "capacity.gpus_for_target";
    public const string Converged = "capacity.converged";
    public const string HorizonS = "capacity.horizon_s";
    public const string RequestsUsed = "capacity.requests_used";
    public const string CiLow = "capacity.ci_low";
    public const string CiHigh = "capacity.ci_high";
    public const string SteadyPrefix = "steady_state.";
    public const string UsdPerMillionTokens = "cost.usd_per_million_tokens";
    public const string Pareto = "pareto";

    /// <summary>Every summary.json field as (column name, kind, getter), by reflection so new metrics appear on their own.</summary>
    public static readonly IReadOnlyList<(ResultColumn Column, Func<RunSummary, object?> Get)> Summary =
        Flatten(typeof(RunSummary), "", s => s).Where(c => c.Column.Name != Seed).ToList();

    /// <summary>
    /// A number of summary.json by column name: a fixed field, a percentile key (p95_ttft_ms, p99.9_e2el_ms), or one
    /// of steady_state (steady_state.goodput_fraction, steady_state.p99_ttft_ms).
    /// </summary>
    public static bool IsNumericSummaryMetric(string name) =>
        Summary.Any(c => c.Column.Name == name && c.Column.Kind is not (ColumnKind.String or ColumnKind.Bool or ColumnKind.NullableBool))
        || MetricPercentiles.TryParseKey(name, out _, out _)
        || name.StartsWith(SteadyPrefix, StringComparison.Ordinal) && MetricPercentiles.TryParseKey(name[SteadyPrefix.Length..], out _, out _);

    public static double? Metric(RunSummary s, string name)
    {
        if (Summary.FirstOrDefault(c => c.Column.Name == name) is { Get: not null } col)
            return col.Get(s) switch
            {
                null => null,
                int i => i,
                long l => l,
                double d => d,
                _ => null,
            };
        if (name.StartsWith(SteadyPrefix, StringComparison.Ordinal))
            return Number(s.SteadyState?.Percentiles, name[SteadyPrefix.Length..]);
        return Number(s.Percentiles, name);
    }

    /// <summary>
    /// The value that judges an SLO: over the steady window when the summary has it there (latency percentiles and
    /// means of per-request metrics, ITL percentiles, goodput), else the whole run's (a benchmark's ITL, which has no
    /// times to cut a window by).
    /// </summary>
    public static double? SteadyMetric(RunSummary s, string name) =>
        s.SteadyState is not null && IsNumericSummaryMetric(SteadyPrefix + name) ? Metric(s, SteadyPrefix + name) ?? Metric(s, name) : Metric(s, name);

    private static double? Number(Dictionary<string, object>? values, string key) =>
        values is not null && values.TryGetValue(key, out var v) ? MetricPercentiles.ValueOf(v) : null;

    /// <summary>Percentile columns beyond the fixed ones: pNN_metric_ms, then steady_state.pNN_metric_ms.</summary>
    public static IEnumerable<(ResultColumn Column, Func<RunSummary, object?> Get)> PercentileColumns(IReadOnlyList<double> percentiles)
    {
        foreach (var p in percentiles)
            foreach (var m in MetricPercentiles.Metrics)
            {
                var key = MetricPercentiles.Key(p, m);
                if (!MetricPercentiles.FixedKeys.Contains(key))
                    yield return (new ResultColumn(key, ColumnKind.NullableDouble), s => Number(s.Percentiles, key));
            }
        foreach (var p in MetricPercentiles.WithFixed(percentiles))
            foreach (var m in MetricPercentiles.Metrics)
            {
                var key = MetricPercentiles.Key(p, m);
                yield return (new ResultColumn(SteadyPrefix + key, ColumnKind.NullableDouble), s => Number(s.SteadyState?.Percentiles, key));
            }
    }

    private static IEnumerable<(ResultColumn Column, Func<RunSummary, object?> Get)> Flatten(Type type, string prefix, Func<RunSummary, object?> owner)
    {
        foreach (var p in type.GetProperties(BindingFlags.Public | BindingFlags.Instance))
        {
            var name = p.GetCustomAttribute<JsonPropertyNameAttribute>()?.Name;
            // Fields left out of summary.json only when null (calibration_warnings, parallel_samples) still get their column.
            if (name is null || p.GetCustomAttribute<JsonIgnoreAttribute>() is { Condition: JsonIgnoreCondition.Always }) continue;
            var t = p.PropertyType;
            Func<RunSummary, object?> get = s => owner(s) is { } o ? p.GetValue(o) : null;
            bool simple = t.IsPrimitive || t == typeof(string) || Nullable.GetUnderlyingType(t) is not null;
            // A nested object may be absent (steady_state of a summary read from an older file): its columns are nullable.
            if (simple && prefix.Length > 0 && t.IsValueType && Nullable.GetUnderlyingType(t) is null) t = typeof(Nullable<>).MakeGenericType(t);
            if (simple)
                yield return (new ResultColumn(prefix + name, ResultColumn.KindOf(t)), get);
            else if (typeof(IEnumerable<string>).IsAssignableFrom(t))
                // A list of messages (calibration_warnings): one text cell, the messages joined; null when absent.
                yield return (new ResultColumn(prefix + name, ResultColumn.KindOf(typeof(string))),
                    s => get(s) is IEnumerable<string> list ? string.Join("; ", list) : null);
            else
                foreach (var nested in Flatten(t, prefix + name + ".", get))
                    yield return nested;
        }
    }

    /// <summary>The columns of a sweep's rows (results.parquet adds <see cref="Pareto"/> when there is a cost section).</summary>
    public static List<ResultColumn> For(SweepFile sweep)
    {
        var cols = new List<ResultColumn> { new(ConfigId, ColumnKind.Int32), new(Seed, ColumnKind.Int64) };
        cols.AddRange(sweep.Axes.Select(a => new ResultColumn(a.Key, a.Numeric ? ColumnKind.Double : ColumnKind.String)));
        // An axis over a key that is also a summary field (model) keeps one column: the axis.
        cols.AddRange(Summary.Select(s => s.Column).Where(c => !sweep.Axes.Any(a => a.Key == c.Name)));
        cols.AddRange(PercentileColumns(sweep.Percentiles).Select(p => p.Column));
        if (sweep.Capacity is not null)
        {
            cols.Add(new(MaxRate, ColumnKind.Double));
            cols.Add(new(GpusPerReplica, ColumnKind.Int32));
            cols.Add(new(GpusForTarget, ColumnKind.NullableInt32));
            cols.Add(new(Converged, ColumnKind.Bool));
            cols.Add(new(HorizonS, ColumnKind.Double));
            cols.Add(new(RequestsUsed, ColumnKind.Int32));
            cols.Add(new(CiLow, ColumnKind.NullableDouble));
            cols.Add(new(CiHigh, ColumnKind.NullableDouble));
        }
        if (sweep.Cost is not null) cols.Add(new(UsdPerMillionTokens, ColumnKind.NullableDouble));
        return cols;
    }
}
