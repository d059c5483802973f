using System.Text;
using System.Text.Json;
using RLMServing.Workloads;

namespace RLMServing.IO.Traces;

/// <summary>Streams any request-trace format into <see cref="TraceStats"/> (no temporary file) and formats the JSON.</summary>
public static class RequestTraceStats
{
    public static (TraceStats Stats, BadRows Bad) Compute(string path, string? format = null, SourceOptions? options = null, bool skipBadRows = false, long? limit = null)
    {
        var source = string.IsNullOrEmpty(format) || format == "auto" ? RequestTraceFormats.Detect(path) : RequestTraceFormats.Get(format);
        var context = new SourceContext(options ?? new SourceOptions(), new BadRows(path, skipBadRows));
        var accumulator = new TraceStatsAccumulator();
        foreach (var row in source.Read(path, context))
        {
            if (accumulator.Rows >= limit) break;
            accumulator.Add(row.ArrivalTimeS, row.PromptTokens, row.OutputTokens, row.ThinkingTokens);
        }
        return (accumulator.Build(), context.Bad);
    }

    /// <summary>
    /// The JSON of <c>rlms trace stats --json</c>: rows, duration_s, mean_rate, interarrival_cv, then prompt_tokens,
    /// output_tokens and (where known) thinking_tokens, each with mean, p50, p90, p99, max.
    /// </summary>
    public static string ToJson(TraceStats stats)
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
        {
            json.WriteStartObject();
            json.WriteNumber("rows", stats.Rows);
            json.WriteNumber("duration_s", stats.DurationS);
            json.WriteNumber("mean_rate", stats.MeanRate);
            json.WriteNumber("interarrival_cv", stats.InterarrivalCv);
            Write(json, "prompt_tokens", stats.PromptTokens);
            Write(json, "output_tokens", stats.OutputTokens);
            if (stats.ThinkingTokens is { } thinking) Write(json, "thinking_tokens", thinking);
            json.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.ToArray());
    }

    private static void Write(Utf8JsonWriter json, string name, TokenSummary s)
    {
        json.WriteStartObject(name);
        json.WriteNumber("mean", s.Mean);
        json.WriteNumber("p50", s.P50);
        json.WriteNumber("p90", s.P90);
        json.WriteNumber("p99", s.P99);
        json.WriteNumber("max", s.Max);
        json.WriteEndObject();
    }
}
