using System.Globalization;
using System.Text.Json.Nodes;

namespace RLMServing.Bench;

/// <summary>
/// Everything one <c>rlms bench</c> run needs. Names and defaults follow vLLM's <c>vllm bench serve</c>
/// (vllm/benchmarks/serve.py) where the two overlap, so a vLLM command line carries over.
/// </summary>
public sealed record BenchOptions
{
    /// <summary>Server root, e.g. http://127.0.0.1:8000 (no endpoint path).</summary>
    public string BaseUrl { get; init; } = "http://127.0.0.1:8000";

    /// <summary>Request path; null takes the backend's (openai-chat: /v1/chat/completions).</summary>
    public string? Endpoint { get; init; }

    /// <summary>openai-chat, openai (completions), openai-responses or tgi.</summary>
    public string Backend { get; init; } = BenchBackends.OpenAiChat;

    public string Model { get; init; } = "";

    /// <summary>The name sent in the request's model field; the model when null (as vLLM does).</summary>
    public string? ServedModelName { get; init; }

    public IReadOnlyDictionary<string, string> Headers { get; init; } = new Dictionary<string, string>();

    /// <summary>Sent as a bearer token (OPENAI_API_KEY); a --header Authorization=... overrides it.</summary>
    public string? ApiKey { get; init; }

    public string DatasetName { get; init; } = "random";
    public string? DatasetPath { get; init; }
    public int NumPrompts { get; init; } = 1000;
    public int Seed { get; init; }

    /// <summary>Random dataset: prompt length in tokens (vLLM's default 1024).</summary>
    public int InputLen { get; init; } = 1024;

    /// <summary>Random dataset (and custom rows without their own): output length in tokens (vLLM's default 128).</summary>
    public int OutputLen { get; init; } = 128;

    /// <summary>Every request's max_tokens, overriding the dataset's own lengths.</summary>
    public int? MaxTokens { get; init; }

    /// <summary>Requests per second; infinity sends everything at time 0.</summary>
    public double RequestRate { get; init; } = double.PositiveInfinity;

    /// <summary>Gamma shape of the inter-arrival times: 1 is Poisson, below 1 burstier, above 1 more even.</summary>
    public double Burstiness { get; init; } = 1.0;

    public int? MaxConcurrency { get; init; }
    public string? RampUpStrategy { get; init; }
    public double? RampUpStartRps { get; init; }
    public double? RampUpEndRps { get; init; }
    public int NumWarmups { get; init; }

    /// <summary>How long to wait for a first successful test request; 0 skips the check.</summary>
    public int ReadyCheckTimeoutSec { get; init; } = 600;

    /// <summary>Per-request limit; vLLM's client gives a request six hours.</summary>
    public double RequestTimeoutS { get; init; } = 6 * 60 * 60;

    public bool IgnoreEos { get; init; }
    public double? Temperature { get; init; }
    public double? TopP { get; init; }
    public JsonObject? ExtraBody { get; init; }

    /// <summary>SLOs for goodput in ms by metric (ttft, tpot, e2el, ttfat).</summary>
    public IReadOnlyDictionary<string, double> Goodput { get; init; } = new Dictionary<string, double>();

    public IReadOnlyList<string> PercentileMetrics { get; init; } = ["ttft", "tpot", "itl"];
    public IReadOnlyList<double> MetricPercentiles { get; init; } = [99];

    public string ResultDir { get; init; } = Path.Combine("results", "bench");
    public string? Label { get; init; }
    public IReadOnlyDictionary<string, string> Metadata { get; init; } = new Dictionary<string, string>();

    /// <summary>
    /// Run the same prompts once per max_tokens budget, each into its own folder. With <see cref="IgnoreEos"/> a budget
    /// caps each request's own length (the dataset's) instead of replacing it: a request generates min(length, budget),
    /// as a model that would have stopped at its own length but is cut at the budget. Without it the budget is every
    /// request's max_tokens and the server decides where to stop.
    /// </summary>
    public IReadOnlyList<int>? TokenBudgets { get; init; }

    /// <summary>
    /// Which of a reasoning preset's length mixtures gsm8k, math500, aime24 and gpqa draw each request's max_tokens from:
    /// "reasoning" (thinking + answer, the default) or "standard" (a standard model's answer alone).
    /// </summary>
    public string PresetLengths { get; init; } = "reasoning";

    /// <summary>Closed-loop batches: send this many, wait for all, repeat.</summary>
    public int? ClosedBatches { get; init; }

    /// <summary>Grade each answer that has a reference (docs/bench.md, "Grading").</summary>
    public bool Evaluate { get; init; }

    /// <summary>The grading rule (gsm8k, math500, aime24, gpqa); null takes the dataset's own.</summary>
    public string? Grader { get; init; }

    /// <summary>The grading rule --evaluate uses, or null without --evaluate.</summary>
    public Grading.IAnswerGrader? AnswerGrader => Evaluate ? Grading.AnswerGraders.Get(Grader ?? DatasetName) : null;

    /// <summary>Scrape the server's Prometheus /metrics at this interval (null: no scraping).</summary>
    public double? ScrapeMetricsIntervalS { get; init; }

    /// <summary>Also write vLLM's own result file.</summary>
    public bool VllmJson { get; init; }

    /// <summary>The command line that started the run, recorded in the files' metadata.</summary>
    public string? Command { get; init; }

    public string RequestModel => ServedModelName ?? Model;

    public string ResolvedEndpoint => Endpoint ?? BenchBackends.Get(Backend).DefaultEndpoint;

    public Uri RequestUri => new(BaseUrl.TrimEnd('/') + ResolvedEndpoint);

    public static readonly string[] MetricNames = ["ttft", "tpot", "itl", "e2el", "ttfat"];

    /// <summary>Checks every value before anything is sent; the message names the flag.</summary>
    public void Validate()
    {
        BenchBackends.Get(Backend);
        if (!Uri.TryCreate(BaseUrl, UriKind.Absolute, out var uri) || (uri.Scheme != "http" && uri.Scheme != "https"))
            throw new UserInputException($"--base-url: '{BaseUrl}' is not an http(s) URL");
        if (Endpoint is { } e && !e.StartsWith('/')) throw new UserInputException($"--endpoint: must start with '/', got '{e}'");
        if (string.IsNullOrWhiteSpace(Model)) throw new UserInputException("--model: is required");
        if (NumPrompts < 1) throw new UserInputException($"--num-prompts: must be at least 1, got {NumPrompts}");
        if (InputLen < 1) throw new UserInputException($"--input-len: must be at least 1, got {InputLen}");
        if (OutputLen < 1) throw new UserInputException($"--output-len: must be at least 1, got {OutputLen}");
        if (MaxTokens is < 1) throw new UserInputException($"--max-tokens: must be at least 1, got {MaxTokens}");
        if (PresetLengths is not ("reasoning" or "standard"))
            throw new UserInputException($"--preset-lengths: must be reasoning or standard, got '{PresetLengths}'");
        if (!(RequestRate > 0)) throw new UserInputException($"--request-rate: must be a positive number or inf, got {F(RequestRate)}");
        if (!(Burstiness > 0)) throw new UserInputException($"--burstiness: must be a positive number, got {F(Burstiness)}");
        if (MaxConcurrency is < 1) throw new UserInputException($"--max-concurrency: must be at least 1, got {MaxConcurrency}");
        if (NumWarmups < 0) throw new UserInputException($"--num-warmups: must be zero or positive, got {NumWarmups}");
        if (ReadyCheckTimeoutSec < 0) throw new UserInputException($"--ready-check-timeout-sec: must be zero or positive, got {ReadyCheckTimeoutSec}");
        if (!(RequestTimeoutS > 0)) throw new UserInputException($"--request-timeout: must be a positive number of seconds, got {F(RequestTimeoutS)}");
        if (Temperature is < 0) throw new UserInputException($"--temperature: must be zero or positive, got {F(Temperature.Value)}");
        if (TopP is { } p && !(p > 0 && p <= 1)) throw new UserInputException($"--top-p: must be in (0, 1], got {F(p)}");
        if (RampUpStrategy is { } ramp)
        {
            if (ramp is not ("linear" or "exponential")) throw new UserInputException($"--ramp-up-strategy: must be linear or exponential, got '{ramp}'");
            if (!double.IsPositiveInfinity(RequestRate)) throw new UserInputException("--ramp-up-strategy: the ramp sets the rate; leave --request-rate out");
            if (RampUpStartRps is not { } start || RampUpEndRps is not { } end)
                throw new UserInputException("--ramp-up-strategy: needs both --ramp-up-start-rps and --ramp-up-end-rps");
            if (start < 0 || end < 0) throw new UserInputException("--ramp-up-start-rps: ramp rates must be zero or positive");
            if (start > end) throw new UserInputException($"--ramp-up-start-rps: must not exceed --ramp-up-end-rps ({F(start)} > {F(end)})");
            if (ramp == "exponential" && start == 0) throw new UserInputException("--ramp-up-start-rps: an exponential ramp cannot start at 0");
            if (ramp == "linear" && start == 0 && end == 0) throw new UserInputException("--ramp-up-end-rps: a ramp from 0 to 0 sends nothing");
        }
        else if (RampUpStartRps is not null || RampUpEndRps is not null)
            throw new UserInputException("--ramp-up-start-rps: needs --ramp-up-strategy linear|exponential");
        foreach (var (k, v) in Goodput)
        {
            if (!MetricNames.Contains(k)) throw new UserInputException($"--goodput: unknown metric '{k}'; use ttft, tpot, e2el or ttfat");
            if (!(v >= 0)) throw new UserInputException($"--goodput: {k} must be zero or positive milliseconds, got {F(v)}");
        }
        foreach (var m in PercentileMetrics)
            if (!MetricNames.Contains(m)) throw new UserInputException($"--percentile-metrics: unknown metric '{m}'; use ttft, tpot, itl, e2el or ttfat");
        foreach (var q in MetricPercentiles)
            if (!(q > 0 && q < 100)) throw new UserInputException($"--metric-percentiles: {F(q)} is not between 0 and 100");
        if (TokenBudgets is { } budgets)
        {
            if (budgets.Count == 0) throw new UserInputException("--token-budgets: give at least one budget");
            foreach (var b in budgets)
                if (b < 1) throw new UserInputException($"--token-budgets: budgets must be at least 1, got {b}");
            if (budgets.Distinct().Count() != budgets.Count) throw new UserInputException("--token-budgets: a budget is repeated");
            if (MaxTokens is not null) throw new UserInputException("--token-budgets: sets max_tokens per run; leave --max-tokens out");
        }
        if (ClosedBatches is { } n)
        {
            if (n < 1) throw new UserInputException($"--closed-batches: must be at least 1, got {n}");
            if (!double.IsPositiveInfinity(RequestRate) || RampUpStrategy is not null)
                throw new UserInputException("--closed-batches: batches are sent when the previous one finishes; leave --request-rate and --ramp-up-strategy out");
        }
        if (ScrapeMetricsIntervalS is { } s && !(s > 0)) throw new UserInputException($"--scrape-metrics: must be a positive interval, got {F(s)}");
        if (DatasetName is "sharegpt" or "custom" or "trace" && string.IsNullOrEmpty(DatasetPath))
            throw new UserInputException($"--dataset-path: --dataset-name {DatasetName} reads a file; give its path");
        if (!BenchDatasets.Names.Contains(DatasetName))
            throw new UserInputException($"--dataset-name: unknown dataset '{DatasetName}'; known: {string.Join(", ", BenchDatasets.Names)}");
        if (Grader is { } g)
        {
            if (!Evaluate) throw new UserInputException("--grader: only applies with --evaluate");
            Grading.AnswerGraders.Get(g);
        }
        if (Evaluate && DatasetName != "gsm8k" && !(DatasetName == "custom" && Grader is not null))
            throw new UserInputException(DatasetName == "custom"
                ? $"--evaluate: name the rule for the custom dataset's \"answer\" fields with --grader {string.Join("|", Grading.AnswerGraders.Names)}"
                : $"--evaluate: --dataset-name {DatasetName} has no reference answers{(Grading.AnswerGraders.Find(DatasetName) is not null ? " (its prompts are synthesised)" : "")}; grade gsm8k, or a custom JSONL with \"answer\" fields and --grader");
    }

    private static string F(double x) => x.ToString(CultureInfo.InvariantCulture);
}
