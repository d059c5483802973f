using System.Text.Json;
using System.Text.Json.Nodes;
using Parquet;
using Parquet.Schema;
using RLMServing.IO.ParquetFiles;
using RLMServing.IO.Results;
using RLMServing.Metrics;
using static RLMServing.IO.Results.ResultWriter;

namespace RLMServing.Bench;

/// <summary>
/// Writes a measured run in the simulator's files (requests.parquet with benchmark columns after the shared ones,
/// summary.json, timeseries.parquet) plus chunks.parquet and, with --vllm-json, vLLM's own result file. Everything is
/// staged under temporary names and moved into place together, as <see cref="ResultWriter"/> does.
/// </summary>
public static class BenchResultWriter
{
    public const string VllmResultFile = "vllm-result.json";

    public static readonly ParquetSchema ChunkSchema = new(
        new DataField<long>("request"),
        new DataField<int>("sequence"),
        new DataField<double>("time"),
        new DataField<string>("channel"),
        new DataField<int>("characters"));

    public static readonly ParquetSchema TimeseriesSchema = new(ResultWriter.TimeseriesSchema.Fields.Concat(
    [
        new DataField<int>("client_in_flight"),
        new DataField<int>("client_sent"),
        new DataField<int>("client_finished"),
        new DataField<double?>("num_preemptions_total"),
        new DataField<double?>("prompt_tokens_total"),
        new DataField<double?>("generation_tokens_total"),
        new DataField<double?>("spec_decode_num_draft_tokens_total"),
        new DataField<double?>("spec_decode_num_accepted_tokens_total"),
        new DataField<string>("scrape_error"),
    ]).ToArray());

    public static Task WriteAsync(string dir, BenchRun run, BenchSummary summary, BenchOptions options)
    {
        var metadata = Metadata(run, options);
        var files = new List<(string, Func<string, Task>)>
        {
            ("requests.parquet", p => WriteRequestsAsync(p, summary.Records, metadata, RequestColumns(run.Outcomes), i => run.Outcomes[i].Status)),
            ("timeseries.parquet", p => WriteTimeseriesAsync(p, run.Timeseries, metadata)),
            ("chunks.parquet", p => WriteChunksAsync(p, run.Outcomes, metadata)),
        };
        if (options.VllmJson) files.Add((VllmResultFile, p => File.WriteAllTextAsync(p, VllmResult(run, summary, options).ToJsonString() + "\n")));
        files.Add(("summary.json", p => File.WriteAllTextAsync(p, summary.Json.ToJsonString(Json) + "\n")));
        return WriteFilesAsync(dir, files);
    }

    private static Dictionary<string, string> Metadata(BenchRun run, BenchOptions o)
    {
        var meta = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["rlms.schema"] = "requests/v1",
            ["rlms.source"] = "bench",
            ["rlms.scenario"] = o.Label ?? "bench",
            ["rlms.variant"] = run.TokenBudget is { } budget ? $"budget-{budget}" : "",
            ["rlms.model"] = o.RequestModel,
            ["rlms.command"] = o.Command ?? "",
            ["rlms.bench.backend"] = o.Backend,
            ["rlms.bench.url"] = o.RequestUri.ToString(),
            ["rlms.bench.model"] = o.RequestModel,
            ["rlms.bench.dataset"] = o.DatasetName,
            ["rlms.bench.started_utc"] = run.StartedUtc.ToString("O"),
            ["rlms.seed"] = o.Seed.ToString(System.Globalization.CultureInfo.InvariantCulture),
        };
        if (run.TokenBudget is { } b) meta["rlms.bench.token_budget"] = b.ToString(System.Globalization.CultureInfo.InvariantCulture);
        foreach (var (k, v) in o.Metadata) meta[$"rlms.bench.metadata.{k}"] = v;
        return meta;
    }

    /// <summary>The benchmark's own columns of requests.parquet, after the shared schema.</summary>
    private static List<ExtraColumn> RequestColumns(IReadOnlyList<RequestOutcome> rows) =>
    [
        new(new DataField<double>("scheduled_time_s"), (g, f) => g.Write(f, rows.Select(r => r.ScheduledS).ToArray())),
        new(new DataField<double>("send_time_s"), (g, f) => g.Write(f, rows.Select(r => r.SendS).ToArray())),
        new(new DataField<double?>("end_time_s"), (g, f) => g.WriteNullable(f, rows.Select(r => r.EndS).ToArray())),
        new(new DataField<int>("max_tokens"), (g, f) => g.Write(f, rows.Select(r => r.MaxTokens).ToArray())),
        new(new DataField<string>("token_count_source"), (g, f) => g.WriteStrings(f, rows.Select(r => r.IsCompleted ? r.TokenCountSource : null).ToArray())),
        new(new DataField<string>("finish_reason"), (g, f) => g.WriteStrings(f, rows.Select(r => r.FinishReason).ToArray())),
        new(new DataField<int?>("http_status"), (g, f) => g.WriteNullable(f, rows.Select(r => r.HttpStatus).ToArray())),
        new(new DataField<string>("error"), (g, f) => g.WriteStrings(f, rows.Select(r => r.Error).ToArray())),
        new(new DataField<int>("reasoning_characters"), (g, f) => g.Write(f, rows.Select(r => r.ReasoningCharacters).ToArray())),
        new(new DataField<string>("output_text"), (g, f) => g.WriteStrings(f, rows.Select(r => r.OutputText).ToArray())),
        new(new DataField<string>("reference_answer"), (g, f) => g.WriteStrings(f, rows.Select(r => r.Prompt.ReferenceAnswer).ToArray())),
        new(new DataField<string>("answer_extracted"), (g, f) => g.WriteStrings(f, rows.Select(r => r.AnswerExtracted).ToArray())),
        new(new DataField<bool?>("correct"), (g, f) => g.WriteNullable(f, rows.Select(r => r.Correct).ToArray())),
        new(new DataField<string>("graded_channel"), (g, f) => g.WriteStrings(f, rows.Select(r => r.GradedChannel).ToArray())),
    ];

    private static async Task WriteTimeseriesAsync(string path, IReadOnlyList<ServerSample> rows, IReadOnlyDictionary<string, string> metadata)
    {
        var f = TimeseriesSchema.DataFields;
        await ParquetColumns.WriteFileAsync(path, TimeseriesSchema, metadata, async g =>
        {
            // The shared columns hold the server's view; where it was not scraped they hold the client's (running = in flight).
            await g.Write(f[0], rows.Select(r => r.TimeS).ToArray());
            await g.Write(f[1], new int[rows.Count]);
            await g.Write(f[2], rows.Select(r => (int)(r.Waiting ?? 0)).ToArray());
            await g.Write(f[3], rows.Select(r => (int)(r.Running ?? r.ClientInFlight)).ToArray());
            await g.Write(f[4], new long[rows.Count]);
            await g.Write(f[5], rows.Select(r => r.KvCacheUsage ?? 0).ToArray());
            await g.Write(f[6], rows.Select(r => r.ClientInFlight).ToArray());
            await g.Write(f[7], rows.Select(r => r.ClientSent).ToArray());
            await g.Write(f[8], rows.Select(r => r.ClientFinished).ToArray());
            await g.WriteNullable(f[9], rows.Select(r => r.Preemptions).ToArray());
            await g.WriteNullable(f[10], rows.Select(r => r.PromptTokens).ToArray());
            await g.WriteNullable(f[11], rows.Select(r => r.GenerationTokens).ToArray());
            await g.WriteNullable(f[12], rows.Select(r => r.SpecDecodeDraftTokens).ToArray());
            await g.WriteNullable(f[13], rows.Select(r => r.SpecDecodeAcceptedTokens).ToArray());
            await g.WriteStrings(f[14], rows.Select(r => r.ScrapeError).ToArray());
        });
    }

    private static async Task WriteChunksAsync(string path, IReadOnlyList<RequestOutcome> outcomes, IReadOnlyDictionary<string, string> metadata)
    {
        int n = outcomes.Sum(o => o.Chunks.Count);
        var request = new long[n];
        var sequence = new int[n];
        var time = new double[n];
        var channel = new string?[n];
        var characters = new int[n];
        int i = 0;
        foreach (var o in outcomes)
            foreach (var c in o.Chunks)
            {
                request[i] = o.Prompt.Id;
                sequence[i] = c.Sequence;
                time[i] = c.TimeS;
                channel[i] = c.Channel == Channel.Reasoning ? "reasoning" : "answer";
                characters[i] = c.Characters;
                i++;
            }
        var f = ChunkSchema.DataFields;
        await ParquetColumns.WriteFileAsync(path, ChunkSchema, metadata, async g =>
        {
            await g.Write(f[0], request);
            await g.Write(f[1], sequence);
            await g.Write(f[2], time);
            await g.WriteStrings(f[3], channel);
            await g.Write(f[4], characters);
        });
    }

    /// <summary>
    /// vLLM's result file (vllm/benchmarks/serve.py main_async with --save-result --save-detailed): setup keys, the
    /// benchmark result, per-request lists in seconds (ttfts, itls), and mean/median/std/pXX for the selected metrics.
    /// </summary>
    public static JsonObject VllmResult(BenchRun run, BenchSummary summary, BenchOptions o)
    {
        var s = summary.Summary;
        var values = BenchSummary.MetricValues(run.Outcomes, summary.Records);
        var json = new JsonObject
        {
            ["date"] = run.StartedUtc.ToString("yyyyMMdd-HHmmss"),
            ["endpoint_type"] = o.Backend,
            ["backend"] = o.Backend,
            ["label"] = o.Label,
            ["model_id"] = o.Model,
            ["tokenizer_id"] = o.Model,
            ["num_prompts"] = o.NumPrompts,
        };
        foreach (var (k, v) in o.Metadata) json[k] = v;
        json["request_rate"] = double.IsPositiveInfinity(o.RequestRate) ? "inf" : o.RequestRate;
        json["burstiness"] = o.Burstiness;
        json["max_concurrency"] = o.MaxConcurrency;
        if (o.RampUpStrategy is { } ramp)
        {
            json["ramp_up_strategy"] = ramp;
            json["ramp_up_start_rps"] = o.RampUpStartRps;
            json["ramp_up_end_rps"] = o.RampUpEndRps;
        }
        json["duration"] = run.DurationS;
        json["completed"] = s.Completed;
        json["failed"] = s.Failed;
        json["total_input_tokens"] = s.TotalInputTokens;
        json["total_output_tokens"] = s.TotalOutputTokens;
        json["request_throughput"] = s.Completed / Math.Max(run.DurationS, 1e-12);
        json["request_goodput"] = o.Goodput.Count > 0 ? BenchSummary.Good(summary.Records, o.Goodput) / Math.Max(run.DurationS, 1e-12) : null;
        json["output_throughput"] = s.TotalOutputTokens / Math.Max(run.DurationS, 1e-12);
        json["total_token_throughput"] = (s.TotalInputTokens + s.TotalOutputTokens) / Math.Max(run.DurationS, 1e-12);
        json["input_lens"] = new JsonArray(run.Outcomes.Select(x => (JsonNode?)x.PromptTokens).ToArray());
        json["output_lens"] = new JsonArray(run.Outcomes.Select(x => (JsonNode?)(x.IsCompleted ? x.OutputTokens : 0)).ToArray());
        json["ttfts"] = new JsonArray(run.Outcomes.Select(x => (JsonNode?)(x.IsCompleted ? x.FirstTokenS!.Value - x.SendS : 0.0)).ToArray());
        json["itls"] = new JsonArray(run.Outcomes.Select(x => (JsonNode?)new JsonArray(x.IsCompleted ? x.ItlMs().Select(v => (JsonNode?)(v / 1000)).ToArray() : [])).ToArray());
        json["generated_texts"] = new JsonArray(run.Outcomes.Select(x => (JsonNode?)x.OutputText).ToArray());
        json["errors"] = new JsonArray(run.Outcomes.Select(x => (JsonNode?)(x.Error ?? "")).ToArray());
        json["max_output_tokens_per_s"] = summary.Json["max_output_tokens_per_s"]?.DeepClone();
        json["max_concurrent_requests"] = summary.Json["max_concurrent_requests"]?.DeepClone();
        foreach (var metric in new[] { "ttft", "tpot", "itl", "e2el", "ttfat" })
        {
            if (!o.PercentileMetrics.Contains(metric)) continue;
            var v = values[metric];
            json[$"mean_{metric}_ms"] = v.Length == 0 ? 0 : v.Average();
            json[$"median_{metric}_ms"] = Percentiles.Of(v, 0.5);
            json[$"std_{metric}_ms"] = v.Length == 0 ? 0 : MathNet.Numerics.Statistics.ArrayStatistics.PopulationStandardDeviation(v);
            foreach (var q in o.MetricPercentiles) json[$"p{BenchSummary.Word(q)}_{metric}_ms"] = Percentiles.Of(v, q / 100);
        }
        return json;
    }

    /// <summary>
    /// comparison.json of a token-budget sweep in the simulator's variant layout (scenario, variants = the budget
    /// folders, summaries), so <c>rlms report</c> shows the budgets side by side, plus a token_budgets table.
    /// </summary>
    public static async Task WriteComparisonAsync(string dir, string scenario, IReadOnlyList<BenchResult> results)
    {
        var doc = new JsonObject
        {
            ["scenario"] = scenario,
            ["variants"] = new JsonArray(results.Select(r => (JsonNode?)Path.GetFileName(r.Directory)).ToArray()),
            ["summaries"] = new JsonArray(results.Select(r => (JsonNode?)r.Summary.Json.DeepClone()).ToArray()),
            ["token_budgets"] = new JsonArray(results.Select(r => (JsonNode?)ComparisonRow(r)).ToArray()),
        };
        await WriteFilesAsync(dir, [("comparison.json", p => File.WriteAllTextAsync(p, doc.ToJsonString(Json) + "\n"))]);
    }

    public static JsonObject ComparisonRow(BenchResult r)
    {
        var s = r.Summary.Summary;
        int completed = Math.Max(s.Completed, 1);
        return new JsonObject
        {
            ["token_budget"] = r.TokenBudget,
            ["folder"] = Path.GetFileName(r.Directory),
            ["completed"] = s.Completed,
            ["failed"] = s.Failed,
            ["mean_ttft_ms"] = s.MeanTtftMs,
            ["mean_ttfat_ms"] = s.MeanTtfatMs,
            ["mean_tpot_ms"] = s.MeanTpotMs,
            ["mean_e2el_ms"] = s.MeanE2elMs,
            ["p99_e2el_ms"] = s.P99E2elMs,
            ["mean_output_tokens"] = (double)s.TotalOutputTokens / completed,
            ["mean_thinking_tokens"] = s.MeanThinkingTokens,
            ["length_capped_share"] = (double)r.Run.Outcomes.Count(o => o.IsCompleted && o.FinishReason == "length") / completed,
            ["output_throughput"] = s.OutputThroughput,
            ["accuracy"] = r.Summary.Json["accuracy"]?.DeepClone(),
            ["graded"] = r.Summary.Json["graded"]?.DeepClone(),
        };
    }
}
