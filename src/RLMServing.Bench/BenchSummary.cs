using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using RLMServing.IO.Results;
using RLMServing.Metrics;
using RLMServing.Scenarios;

namespace RLMServing.Bench;

/// <summary>
/// A measured run in the simulator's terms: request rows (<see cref="RequestRecord"/>) and summary.json built by the
/// simulator's <see cref="SummaryBuilder"/>, so the keys and their definitions are the same; plus the benchmark's own
/// keys (selected percentiles, send lag, token-count sources, server-side metrics) beside them.
/// </summary>
public sealed record BenchSummary(RunSummary Summary, JsonObject Json, IReadOnlyList<RequestRecord> Records)
{
    /// <summary>Per-metric values of completed requests in ms, as vLLM's calculate_metrics collects them.</summary>
    public static Dictionary<string, double[]> MetricValues(IReadOnlyList<RequestOutcome> outcomes, IReadOnlyList<RequestRecord> records)
    {
        var values = BenchOptions.MetricNames.ToDictionary(m => m, _ => new List<double>());
        for (int i = 0; i < outcomes.Count; i++)
        {
            var r = records[i];
            if (r.Status != RequestStatus.Completed) continue;
            values["ttft"].Add(r.TtftMs!.Value);
            values["e2el"].Add(r.E2elMs!.Value);
            if (r.TpotMs is { } tpot) values["tpot"].Add(tpot);
            if (r.TtfatMs is { } ttfat) values["ttfat"].Add(ttfat);
            values["itl"].AddRange(outcomes[i].ItlMs());
        }
        return values.ToDictionary(kv => kv.Key, kv => Percentiles.Sorted(kv.Value));
    }

    /// <summary>A row of requests.parquet: latencies only for completed requests; the send time stands for the arrival.</summary>
    public static RequestRecord ToRecord(RequestOutcome o)
    {
        bool ok = o.IsCompleted;
        bool truncated = ok && o.FinishReason == "length" && o.ThinkingTokens > 0 && o.FirstAnswerS is null;
        return new RequestRecord(o.Prompt.Id, o.SendS, o.PromptTokens, o.OutputTokens, o.ThinkingTokens,
            ok ? RequestStatus.Completed : RequestStatus.Rejected, null,
            ok ? o.FirstTokenS : null, ok ? o.FirstAnswerS : null, ok ? o.EndS : null, 0, 0, ok ? null : o.Error, truncated);
    }

    public static BenchSummary Build(BenchRun run, BenchOptions o)
    {
        var records = run.Outcomes.Select(ToRecord).ToList();
        var values = MetricValues(run.Outcomes, records);
        var itl = new QuantileSketch();
        foreach (var x in values["itl"]) itl.Add(x);
        var identity = new RunSummary
        {
            Scenario = o.Label ?? "bench",
            Variant = run.TokenBudget is { } b ? $"budget-{b}" : null,
            Model = o.RequestModel,
            Replicas = 1,
            Seed = o.Seed,
        };
        var slo = new SloConfig(o.Goodput.TryGetValue("ttft", out var t) ? t : null, o.Goodput.TryGetValue("tpot", out var p) ? p : null,
            o.Goodput.TryGetValue("e2el", out var e) ? e : null);
        // The client knows nothing of the server's GPU; one empty replica leaves those keys at zero.
        var unknownServer = new ReplicaTotals(0, 0, 0, 0, 0, 0, 0, 1, 0, 1, 1);
        var summary = SummaryBuilder.Build(identity, records, itl, [unknownServer], slo, maxNumSeqs: 1);
        var scraped = run.Timeseries.Where(s => s.Running is not null || s.KvCacheUsage is not null).ToList();
        var kv = scraped.Where(s => s.KvCacheUsage is not null).Select(s => s.KvCacheUsage!.Value).ToList();
        var running = scraped.Where(s => s.Running is not null).Select(s => s.Running!.Value).ToList();
        var preemptions = scraped.Where(s => s.Preemptions is not null).Select(s => s.Preemptions!.Value).ToList();
        summary = summary with
        {
            Failed = records.Count(r => r.Status != RequestStatus.Completed),
            Rejected = run.Outcomes.Count(x => x.HttpStatus is { } code && (code < 200 || code >= 300)),
            RequestGoodput = o.Goodput.Count > 0 ? Good(records, o.Goodput) / summary.Duration : null,
            PeakKvCacheUsage = kv.Count > 0 ? kv.Max() : 0,
            MeanKvCacheUsage = kv.Count > 0 ? kv.Average() : 0,
            MeanBatchSize = running.Count > 0 ? running.Average() : 0,
            Preemptions = preemptions.Count > 1 ? (long)(preemptions[^1] - preemptions[0]) : 0,
        };
        var json = (JsonObject)JsonSerializer.SerializeToNode(summary, ResultWriter.Json)!;
        foreach (var metric in o.PercentileMetrics)
            foreach (var q in o.MetricPercentiles)
                json[$"p{Word(q)}_{metric}_ms"] = Percentiles.Of(values[metric], q / 100);
        var (peakTokensPerS, peakConcurrent) = Peaks(run.Outcomes);
        var lags = run.Outcomes.Select(x => (x.SendS - x.ScheduledS) * 1000).ToList();
        json["max_output_tokens_per_s"] = peakTokensPerS;
        json["max_concurrent_requests"] = peakConcurrent;
        json["benchmark_duration"] = run.DurationS;
        json["timed_out"] = run.Outcomes.Count(x => x.Status == RequestOutcome.TimedOut);
        json["cancelled"] = run.Outcomes.Count(x => x.Status == RequestOutcome.Cancelled);
        json["not_sent"] = run.NotSent;
        json["interrupted"] = run.Interrupted;
        json["mean_send_lag_ms"] = lags.Count > 0 ? lags.Average() : 0;
        json["max_send_lag_ms"] = lags.Count > 0 ? lags.Max() : 0;
        json["token_count_source"] = new JsonObject(run.Outcomes.Where(x => x.IsCompleted).GroupBy(x => x.TokenCountSource).OrderBy(g => g.Key, StringComparer.Ordinal)
            .Select(g => KeyValuePair.Create(g.Key, (JsonNode?)g.Count())));
        json["token_budget"] = run.TokenBudget;
        json["backend"] = o.Backend;
        json["base_url"] = o.BaseUrl;
        json["endpoint"] = o.ResolvedEndpoint;
        json["dataset_name"] = o.DatasetName;
        json["request_rate"] = double.IsPositiveInfinity(o.RequestRate) ? "inf" : o.RequestRate;
        json["burstiness"] = o.Burstiness;
        json["max_concurrency"] = o.MaxConcurrency;
        if (o.ClosedBatches is { } n) json["closed_batches"] = n;
        if (o.AnswerGrader is { } grader)
        {
            int graded = run.Outcomes.Count(x => x.Correct is not null);
            json["grader"] = grader.Dataset;
            json["graded"] = graded;
            json["graded_from_reasoning"] = run.Outcomes.Count(x => x.GradedChannel == "reasoning");
            json["accuracy"] = graded > 0 ? (double)run.Outcomes.Count(x => x.Correct == true) / graded : null;
        }
        if (o.Goodput.Count > 0) json["goodput_slo_ms"] = new JsonObject(o.Goodput.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)kv.Value)));
        // --metadata fills identity keys the client cannot know (gpu) but never overwrites a measured value.
        foreach (var (k, v) in o.Metadata)
            if (json[k] is null || (json[k] is JsonValue value && value.TryGetValue<string>(out var text) && text.Length == 0)) json[k] = v;
        return new BenchSummary(summary, json, records);
    }

    /// <summary>vLLM's goodput: completed requests within every SLO given; a TPOT of one-token answers counts as 0.</summary>
    public static int Good(IReadOnlyList<RequestRecord> records, IReadOnlyDictionary<string, double> slo) =>
        records.Count(r => r.Status == RequestStatus.Completed
            && (!slo.TryGetValue("ttft", out var t) || r.TtftMs <= t)
            && (!slo.TryGetValue("tpot", out var p) || (r.TpotMs ?? 0) <= p)
            && (!slo.TryGetValue("e2el", out var e) || r.E2elMs <= e)
            && (!slo.TryGetValue("ttfat", out var a) || r.TtfatMs is { } ttfat && ttfat <= a));

    /// <summary>vLLM's peak output tokens per second and the concurrent requests at the time, over one-second buckets.</summary>
    private static (double, int) Peaks(IReadOnlyList<RequestOutcome> outcomes)
    {
        var done = outcomes.Where(x => x.IsCompleted).ToList();
        if (done.Count == 0) return (0, 0);
        double start = done.Min(x => x.SendS), end = done.Max(x => x.EndS!.Value);
        int buckets = (int)Math.Ceiling(end - start) + 1;
        var tokens = new double[buckets];
        var concurrent = new int[buckets];
        foreach (var x in done)
        {
            foreach (var c in x.Chunks) tokens[Math.Clamp((int)(c.TimeS - start), 0, buckets - 1)]++;
            for (int s = (int)(x.SendS - start); s <= (int)(x.EndS!.Value - start) && s < buckets; s++) concurrent[s]++;
        }
        return (tokens.Max(), concurrent.Max());
    }

    /// <summary>How vLLM names a percentile in its keys: p99, p99.9.</summary>
    public static string Word(double q) => q == Math.Floor(q) ? ((int)q).ToString(CultureInfo.InvariantCulture) : q.ToString(CultureInfo.InvariantCulture);
}
