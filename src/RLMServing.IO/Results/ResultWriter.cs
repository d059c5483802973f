using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization;
using Parquet;
using RLMServing.IO.ParquetFiles;
using Parquet.Schema;
using RLMServing.Metrics;
using RLMServing.Simulation;

namespace RLMServing.IO.Results;

/// <summary>
/// Writes a run's summary.json, requests.parquet and timeseries.parquet. Files are written to temporary names
/// and moved into place at the end, so an interrupted run never leaves half-written results.
/// </summary>
public static class ResultWriter
{
    /// <summary>A column of requests.parquet beyond the shared schema, with the code that writes its values.</summary>
    public sealed record ExtraColumn(DataField Field, Func<ParquetRowGroupWriter, DataField, Task> Write);

    public static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    public static readonly ParquetSchema RequestSchema = new(
        new DataField<long>("request_id"),
        new DataField<double>("arrival_time_s"),
        new DataField<int>("prompt_tokens"),
        new DataField<int>("output_tokens"),
        new DataField<int>("thinking_tokens"),
        new DataField<string>("status"),
        new DataField<double?>("first_scheduled_time_s"),
        new DataField<double?>("first_token_time_s"),
        new DataField<double?>("first_answer_token_time_s"),
        new DataField<double?>("completion_time_s"),
        new DataField<double?>("ttft_ms"),
        new DataField<double?>("tpot_ms"),
        new DataField<double?>("e2el_ms"),
        new DataField<int>("preemptions"),
        new DataField<int>("replica"),
        new DataField<double?>("ttfat_ms"),
        new DataField<bool>("thinking_truncated"),
        new DataField<string>("reject_reason"),
        new DataField<int>("cached_prompt_tokens"));

    /// <summary>requests.parquet of a parallel-sampling run (workload.n &gt; 1): one row per sample, with its prompt.</summary>
    public static readonly ParquetSchema SampledRequestSchema = new(RequestSchema.Fields.Concat(
        [new DataField<long>("prompt_id"), new DataField<int>("sample_index")]).ToArray());

    public static readonly ParquetSchema TimeseriesSchema = new(
        new DataField<double>("time_s"),
        new DataField<int>("replica"),
        new DataField<int>("waiting"),
        new DataField<int>("running"),
        new DataField<long>("kv_blocks_used"),
        new DataField<double>("kv_cache_usage"));

    /// <param name="extra">More files of the same run (a replay's iterations.parquet), written and moved with the rest.</param>
    public static async Task WriteRunAsync(string dir, SimulationResult result, IReadOnlyDictionary<string, string> metadata,
        IReadOnlyList<(string Name, Func<string, Task> Write)>? extra = null)
    {
        using var staged = new StagedFiles();
        await StageRunAsync(staged, dir, result, metadata, extra);
        staged.Commit();
    }

    /// <summary>Writes every file under a temporary name, then moves them all into place; on failure none is left.</summary>
    public static async Task WriteFilesAsync(string dir, IReadOnlyList<(string Name, Func<string, Task> Write)> files)
    {
        using var staged = new StagedFiles();
        foreach (var (name, write) in files) await staged.StageAsync(dir, name, write);
        staged.Commit();
    }

    /// <summary>Writes a run's files into <paramref name="staged"/>, to be moved into place with the rest of the result.</summary>
    public static async Task StageRunAsync(StagedFiles staged, string dir, SimulationResult result, IReadOnlyDictionary<string, string> metadata,
        IReadOnlyList<(string Name, Func<string, Task> Write)>? extra = null)
    {
        await staged.StageAsync(dir, "requests.parquet", p => WriteRequestsAsync(p, result.Requests, metadata));
        await staged.StageAsync(dir, "timeseries.parquet", p => WriteTimeseriesAsync(p, result.Timeseries, metadata));
        foreach (var (name, write) in extra ?? []) await staged.StageAsync(dir, name, write);
        await staged.StageAsync(dir, "summary.json", p => File.WriteAllTextAsync(p, JsonSerializer.Serialize(result.Summary, Json) + "\n"));
    }

    /// <param name="extra">Columns after the shared ones that only some runs have (a live benchmark's send times and errors); readers ignore them.</param>
    /// <param name="status">The status column's text per row when a run tells more than completed/rejected (a live benchmark's failed, timeout, cancelled).</param>
    public static async Task WriteRequestsAsync(string path, IReadOnlyList<RequestRecord> rows, IReadOnlyDictionary<string, string> metadata,
        IReadOnlyList<ExtraColumn>? extra = null, Func<int, string>? status = null)
    {
        // Runs without parallel sampling keep the schema they always had.
        bool sampled = rows.Any(r => r.PromptId is not null);
        var schema = sampled ? SampledRequestSchema : RequestSchema;
        if (extra is { Count: > 0 }) schema = new ParquetSchema(schema.Fields.Concat(extra.Select(c => c.Field)).ToArray());
        var f = schema.DataFields;
        await ParquetColumns.WriteFileAsync(path, schema, metadata, async g =>
        {
            var c = new ColumnBuffers(rows);
            await g.Write(f[0], c.Of(r => r.RequestId));
            await g.Write(f[1], c.Of(r => r.ArrivalTimeS));
            await g.Write(f[2], c.Of(r => r.PromptTokens));
            await g.Write(f[3], c.Of(r => r.OutputTokens));
            await g.Write(f[4], c.Of(r => r.ThinkingTokens));
            await g.WriteStrings(f[5], status is null
                ? rows.Select(r => r.Status == RequestStatus.Completed ? "completed" : "rejected").ToArray()
                : Enumerable.Range(0, rows.Count).Select(status).ToArray());
            await g.WriteNullable(f[6], c.Of(r => r.FirstScheduledTimeS));
            await g.WriteNullable(f[7], c.Of(r => r.FirstTokenTimeS));
            await g.WriteNullable(f[8], c.Of(r => r.FirstAnswerTokenTimeS));
            await g.WriteNullable(f[9], c.Of(r => r.CompletionTimeS));
            await g.WriteNullable(f[10], c.Of(r => r.TtftMs));
            await g.WriteNullable(f[11], c.Of(r => r.TpotMs));
            await g.WriteNullable(f[12], c.Of(r => r.E2elMs));
            await g.Write(f[13], c.Of(r => r.Preemptions));
            await g.Write(f[14], c.Of(r => r.Replica));
            await g.WriteNullable(f[15], c.Of(r => r.TtfatMs));
            await g.Write(f[16], c.Of(r => r.ThinkingTruncated));
            await g.WriteStrings(f[17], rows.Select(r => r.RejectReason).ToArray());
            await g.Write(f[18], c.Of(r => r.CachedPromptTokens));
            if (sampled)
            {
                await g.Write(f[19], c.Of(r => r.PromptId ?? r.RequestId));
                await g.Write(f[20], c.Of(r => r.SampleIndex));
            }
            foreach (var column in extra ?? []) await column.Write(g, column.Field);
        });
    }

    /// <summary>
    /// One array per column type, refilled for each column. A million-row requests.parquet otherwise allocated a fresh
    /// 4-16 MB array for each of its columns (about 180 MB the runtime zeroed and the kernel faulted in). Parquet.Net
    /// has encoded a column when its write completes, so the next column of the same type may reuse the array.
    /// </summary>
    private sealed class ColumnBuffers(IReadOnlyList<RequestRecord> rows)
    {
        private readonly Dictionary<Type, Array> _arrays = new();

        public T[] Of<T>(Func<RequestRecord, T> value)
        {
            if (!_arrays.TryGetValue(typeof(T), out var array)) _arrays[typeof(T)] = array = new T[rows.Count];
            var a = (T[])array;
            for (int i = 0; i < a.Length; i++) a[i] = value(rows[i]);
            return a;
        }
    }

    public static async Task WriteTimeseriesAsync(string path, IReadOnlyList<TimeseriesPoint> rows, IReadOnlyDictionary<string, string> metadata)
    {
        var f = TimeseriesSchema.DataFields;
        await ParquetColumns.WriteFileAsync(path, TimeseriesSchema, metadata, async g =>
        {
            await g.Write(f[0], rows.Select(r => r.TimeS).ToArray());
            await g.Write(f[1], rows.Select(r => r.Replica).ToArray());
            await g.Write(f[2], rows.Select(r => r.Waiting).ToArray());
            await g.Write(f[3], rows.Select(r => r.Running).ToArray());
            await g.Write(f[4], rows.Select(r => r.KvBlocksUsed).ToArray());
            await g.Write(f[5], rows.Select(r => r.KvUsage).ToArray());
        });
    }

    /// <summary>Reads requests.parquet back (for validation, comparison and tests); simulated and measured runs alike.</summary>
    public static Task<IReadOnlyList<RequestRecord>> ReadRequestsAsync(string path)
    {
        ParquetColumns.CheckFile(path);
        return ParquetColumns.GuardAsync(path, () => ReadCheckedRequestsAsync(path));
    }

    private static async Task<IReadOnlyList<RequestRecord>> ReadCheckedRequestsAsync(string path)
    {
        await using var stream = File.OpenRead(path);
        await using var reader = await ParquetReader.CreateAsync(stream);
        var rows = new List<RequestRecord>();
        for (int gi = 0; gi < reader.RowGroupCount; gi++)
        {
            using var g = reader.OpenRowGroupReader(gi);
            DataField F(string name) => reader.Field(name, path);
            var id = await g.Read<long>(F("request_id"));
            var arr = await g.Read<double>(F("arrival_time_s"));
            var p = await g.Read<int>(F("prompt_tokens"));
            var o = await g.Read<int>(F("output_tokens"));
            var th = await g.Read<int>(F("thinking_tokens"));
            var st = await g.ReadStrings(F("status"));
            var fs = await g.ReadNullable<double>(F("first_scheduled_time_s"));
            var ft = await g.ReadNullable<double>(F("first_token_time_s"));
            var fa = await g.ReadNullable<double>(F("first_answer_token_time_s"));
            var c = await g.ReadNullable<double>(F("completion_time_s"));
            var pre = await g.Read<int>(F("preemptions"));
            var rep = await g.Read<int>(F("replica"));
            var tt = reader.OptionalField("thinking_truncated") is { } ttf ? await g.Read<bool>(ttf) : new bool[id.Length];
            var rr = reader.OptionalField("reject_reason") is { } rrf ? await g.ReadStrings(rrf) : new string?[id.Length];
            var cached = reader.OptionalField("cached_prompt_tokens") is { } cf ? await g.Read<int>(cf) : new int[id.Length];
            long[]? promptIds = reader.OptionalField("prompt_id") is { } pf ? await g.Read<long>(pf) : null;
            var sampleIndex = reader.OptionalField("sample_index") is { } sf ? await g.Read<int>(sf) : new int[id.Length];
            for (int i = 0; i < id.Length; i++)
                rows.Add(new RequestRecord(id[i], arr[i], p[i], o[i], th[i], st[i] == "completed" ? RequestStatus.Completed : RequestStatus.Rejected,
                    fs[i], ft[i], fa[i], c[i], pre[i], rep[i], rr[i], tt[i])
                {
                    CachedPromptTokens = cached[i],
                    PromptId = promptIds?[i],
                    SampleIndex = sampleIndex[i],
                });
        }
        return rows;
    }

    /// <summary>Reads timeseries.parquet back (for reports and tests).</summary>
    public static Task<IReadOnlyList<TimeseriesPoint>> ReadTimeseriesAsync(string path)
    {
        ParquetColumns.CheckFile(path);
        return ParquetColumns.GuardAsync(path, () => ReadCheckedTimeseriesAsync(path));
    }

    private static async Task<IReadOnlyList<TimeseriesPoint>> ReadCheckedTimeseriesAsync(string path)
    {
        await using var stream = File.OpenRead(path);
        await using var reader = await ParquetReader.CreateAsync(stream);
        var rows = new List<TimeseriesPoint>();
        for (int gi = 0; gi < reader.RowGroupCount; gi++)
        {
            using var g = reader.OpenRowGroupReader(gi);
            DataField F(string name) => reader.Field(name, path);
            var t = await g.Read<double>(F("time_s"));
            var rep = await g.Read<int>(F("replica"));
            var w = await g.Read<int>(F("waiting"));
            var run = await g.Read<int>(F("running"));
            var kv = await g.Read<long>(F("kv_blocks_used"));
            var use = await g.Read<double>(F("kv_cache_usage"));
            for (int i = 0; i < t.Length; i++) rows.Add(new TimeseriesPoint(t[i], rep[i], w[i], run[i], kv[i], use[i]));
        }
        return rows;
    }
}
