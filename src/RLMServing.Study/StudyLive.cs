using System.Globalization;
using System.Text.Json.Nodes;
using RLMServing.Bench;
using RLMServing.Metrics;

namespace RLMServing.Study;

/// <summary>
/// The study against a running server: each experiment a client can run is sent through the bench runner
/// (in-process), its runs written under DIR/live/EXPERIMENT/VARIANT as <c>rlms bench</c> writes them. The server's
/// own settings are what they are; what it says about itself (/v1/models, /metrics) is recorded. Experiments that
/// need an engine setting a client cannot change (request-level static batching, chunked prefill, speculative
/// decoding, KV compression) are marked not measured, with that reason.
/// </summary>
public static class StudyLive
{
    private const double ScrapeIntervalS = 0.25;

    public static async Task<StudyResults> RunAsync(StudyFile s, string baseUrl, bool evaluate, string outDir, Action<string>? log, CancellationToken stop)
    {
        var results = new StudyResults("live");
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(30) };
        var served = await ServedModelsAsync(http, baseUrl, results, stop).ConfigureAwait(false);
        await ScrapeSettingsAsync(http, baseUrl, results, stop).ConfigureAwait(false);
        // The server serves what it serves: the study's reasoning model when listed, otherwise the first model it
        // lists stands in for it; the standard model is measured only when the server lists it too.
        string reasoning = served.Contains(s.Primary.Reasoning) ? s.Primary.Reasoning : served.FirstOrDefault() ?? s.Primary.Reasoning;
        string? standard = s.Primary.Standard is { } std && served.Contains(std) ? std : null;
        results.Server["reasoning_model_served_as"] = reasoning;
        if (s.Primary.Standard is { } st && standard is null) results.Server["standard_model"] = $"{st} not served: standard side not measured";
        int maxBudget = s.TokenBudgets[^1];

        // Only GSM8K's questions are real (with their reference answers); the other presets' prompts are synthesised,
        // so there is nothing to grade them against.
        bool Graded(string dataset) => evaluate && dataset == "gsm8k";
        if (evaluate && s.Datasets.Any(d => d != "gsm8k"))
            results.Server["evaluate"] = $"graded: gsm8k; not graded (synthesised prompts, no reference answers): {string.Join(", ", s.Datasets.Where(d => d != "gsm8k"))}";
        else if (evaluate) results.Server["evaluate"] = "graded: gsm8k";

        BenchOptions Base(string dataset, string model, string dir) => new()
        {
            Evaluate = Graded(dataset),
            BaseUrl = baseUrl,
            Model = model,
            DatasetName = dataset,
            NumPrompts = s.Requests,
            Seed = s.Seed,
            MaxTokens = maxBudget,
            ResultDir = dir,
            ReadyCheckTimeoutSec = 120,
            ScrapeMetricsIntervalS = ScrapeIntervalS,
            Label = Path.GetFileName(dir),
            Command = $"rlms bench --base-url {baseUrl} --model {model} --dataset-name {dataset} --num-prompts {s.Requests} --seed {s.Seed}{(Graded(dataset) ? " --evaluate" : "")}",
        };
        // A synthesised prompt says nothing about how long a model would think about the dataset's real question, so
        // those requests carry the preset's own lengths (the model side's mixture) with ignore_eos, as vLLM's client
        // does for synthetic data; the budget caps each length (BenchOptions.TokenBudgets). GSM8K's real questions
        // are answered as long as the server's model decides, cut at the budget.
        bool Synthesised(string dataset) => dataset != "gsm8k";
        BenchOptions Lengths(BenchOptions o, string dataset, string role, int budget) => Synthesised(dataset)
            ? o with
            {
                MaxTokens = null, IgnoreEos = true, PresetLengths = role, TokenBudgets = o.TokenBudgets ?? [budget],
                Command = o.Command + $" --ignore-eos --preset-lengths {role}" + (o.TokenBudgets is null ? $" --token-budgets {budget}" : ""),
            }
            : o with { Command = o.Command + (o.TokenBudgets is null ? $" --max-tokens {budget}" : "") };

        BenchOptions WithLoad(BenchOptions o) => s.Load.ClosedBatch is { } b
            ? o with { ClosedBatches = b, Command = o.Command + $" --closed-batches {b}" }
            : o with { RequestRate = s.Load.Rates[0], Command = o.Command + $" --request-rate {s.Load.Rates[0].ToString("G6", CultureInfo.InvariantCulture)}" };

        async Task<IReadOnlyList<BenchResult>> Bench(BenchOptions o)
        {
            log?.Invoke($"bench {o.Label}: {o.NumPrompts} requests{(o.TokenBudgets is { } tb ? $" x {tb.Count} budgets" : "")}");
            using var runner = new BenchRunner(o);
            return await runner.RunAllAsync(null, null, stop).ConfigureAwait(false);
        }

        if (s.Bimodal is { } bm)
        {
            var dir = Path.Combine(outDir, "live", Experiments.Bimodal);
            results.Commands[Experiments.Bimodal] = $"{Command(Lengths(WithLoad(Base(bm.Datasets[0], reasoning, dir)), bm.Datasets[0], "reasoning", maxBudget))} (one run per model and dataset)";
            foreach (var d in bm.Datasets)
                foreach (var (role, model) in Roles(reasoning, standard))
                {
                    var r = await Bench(Lengths(WithLoad(Base(d, model, Path.Combine(dir, $"{role}-{d}"))), d, role, maxBudget)).ConfigureAwait(false);
                    results.Add(Outcome(Experiments.Bimodal, $"{StudyPlan.PairName(s, 0, role)}-{d}", r[0]));
                }
        }
        if (s.Batching is { } ba)
        {
            var dir = Path.Combine(outDir, "live", Experiments.Batching);
            var needsEngine = ba.Policies.Where(p => p is "static" or "chunked_prefill").ToList();
            foreach (var p in ba.Policies)
            {
                if (p is "static" or "chunked_prefill") continue;
                var o = Lengths(Base(ba.Dataset, reasoning, Path.Combine(dir, p)), ba.Dataset, "reasoning", maxBudget);
                // The study's static batching is a client that sends a batch and waits for all of it; continuous is
                // the same concurrency kept full (--max-concurrency with every request due at once).
                o = p == "static_closed_batches"
                    ? o with { ClosedBatches = ba.Batch, Command = o.Command + $" --closed-batches {ba.Batch} --scrape-metrics {ScrapeIntervalS}s" }
                    : o with { MaxConcurrency = ba.Batch, Command = o.Command + $" --max-concurrency {ba.Batch} --scrape-metrics {ScrapeIntervalS}s" };
                var r = await Bench(o).ConfigureAwait(false);
                results.Add(Outcome(Experiments.Batching, p, r[0]));
                results.Commands[Experiments.Batching] = Command(o) + " (and --closed-batches for the study's static batching)";
            }
            if (needsEngine.Count > 0)
                results.Server["batching_not_measured"] = $"{string.Join(", ", needsEngine)}: an engine setting a client cannot change (the server's own batching is what it is)";
        }
        if (s.Speculative is not null)
            results.NotMeasured[Experiments.Speculative] = "speculative decoding is an engine setting; a client cannot turn it on or off (run the study against two servers, with and without it, to compare)";
        if (s.KvCompression is not null)
            results.NotMeasured[Experiments.KvCompression] = "KV-cache compression is an engine setting a client cannot change";
        if (s.TokenBudget is { } tbx)
        {
            var dir = Path.Combine(outDir, "live", Experiments.TokenBudget);
            foreach (var d in tbx.Datasets)
                foreach (var (role, model) in Roles(reasoning, standard))
                {
                    var o = WithLoad(Base(d, model, Path.Combine(dir, $"{role}-{d}"))) with { MaxTokens = null, TokenBudgets = s.TokenBudgets };
                    o = Lengths(o with { Command = o.Command + $" --token-budgets {string.Join(",", s.TokenBudgets)}" }, d, role, maxBudget);
                    results.Commands.TryAdd(Experiments.TokenBudget, Command(o) + " (one run per model and dataset)");
                    foreach (var r in await Bench(o).ConfigureAwait(false))
                        results.Add(Outcome(Experiments.TokenBudget, $"{StudyPlan.PairName(s, 0, role)}-{d}-{r.TokenBudget}", r));
                }
        }
        return results;
    }

    private static IEnumerable<(string Role, string Model)> Roles(string reasoning, string? standard) =>
        standard is null ? [("reasoning", reasoning)] : [("reasoning", reasoning), ("standard", standard)];

    private static string Command(BenchOptions o) => o.Command ?? "rlms bench";

    /// <summary>A bench run as a finding reads it: the latencies of completed requests, running requests from /metrics, graded accuracy.</summary>
    internal static RunOutcome Outcome(string experiment, string variant, BenchResult r)
    {
        var e2e = r.Summary.Records.Where(q => q.Status == RequestStatus.Completed && q.E2elMs is not null).Select(q => q.E2elMs!.Value).ToArray();
        // Time average of the server's running requests between the first send and the last completion: the
        // scrapes are evenly spaced, so their plain mean is a time average.
        var running = r.Run.Timeseries.Where(t => t.Running is not null).Select(t => t.Running!.Value).ToList();
        double? meanRunning = running.Count > 0 ? running.Average() : null;
        double? accuracy = r.Summary.Json["accuracy"] is JsonValue v && v.TryGetValue<double>(out var a) ? a : null;
        return new RunOutcome(experiment, variant, r.Summary.Summary, e2e, meanRunning, accuracy);
    }

    private static async Task<List<string>> ServedModelsAsync(HttpClient http, string baseUrl, StudyResults results, CancellationToken stop)
    {
        try
        {
            var text = await http.GetStringAsync(baseUrl.TrimEnd('/') + "/v1/models", stop).ConfigureAwait(false);
            var ids = (JsonNode.Parse(text)?["data"] as JsonArray ?? []).Select(m => m?["id"]?.GetValue<string>()).OfType<string>().ToList();
            results.Server["served_models"] = string.Join(", ", ids);
            var first = (JsonNode.Parse(text)?["data"] as JsonArray)?.FirstOrDefault();
            if (first?["max_model_len"] is JsonValue len) results.Server["max_model_len"] = len.ToJsonString();
            if (first?["owned_by"] is JsonValue owner) results.Server["owned_by"] = owner.ToString();
            return ids;
        }
        catch (Exception e) when (e is HttpRequestException or System.Text.Json.JsonException or InvalidOperationException or TaskCanceledException)
        {
            // Not every server lists its models (TGI does not): the study's names are sent as they are, and the
            // bench's ready check says at once whether the server answers to them.
            results.Server["served_models"] = $"GET /v1/models failed: {e.Message}";
            return [];
        }
    }

    /// <summary>What /metrics says about the server's configuration: KV capacity and speculative-decoding counters where exported.</summary>
    private static async Task ScrapeSettingsAsync(HttpClient http, string baseUrl, StudyResults results, CancellationToken stop)
    {
        try
        {
            var text = await http.GetStringAsync(baseUrl.TrimEnd('/') + "/metrics", stop).ConfigureAwait(false);
            var m = PrometheusText.Parse(text);
            results.Server["metrics_series"] = m.Count.ToString(CultureInfo.InvariantCulture);
            foreach (var key in new[] { "vllm:num_requests_running", "vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc", "vllm:cache_config_info" })
                if (m.TryGetValue(key, out var v)) results.Server[key] = v.ToString("G6", CultureInfo.InvariantCulture);
            results.Server["spec_decode_metrics"] = m.Keys.Any(k => k.StartsWith("vllm:spec_decode", StringComparison.Ordinal)) ? "present" : "absent";
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
        {
            results.Server["metrics"] = $"GET /metrics failed: {e.Message}";
        }
    }
}
