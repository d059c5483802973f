namespace RLMServing.Bench;

/// <summary>
/// One row of a benchmark's timeseries.parquet: the server's queue, batch and KV use from its /metrics (vLLM's or
/// SGLang's names; null when not scraped or not served) beside the client's own counts at the same moment.
/// </summary>
public sealed record ServerSample(
    double TimeS,
    int ClientInFlight,
    int ClientSent,
    int ClientFinished,
    double? Running,
    double? Waiting,
    double? KvCacheUsage,
    double? Preemptions,
    double? PromptTokens,
    double? GenerationTokens,
    double? SpecDecodeDraftTokens,
    double? SpecDecodeAcceptedTokens,
    string? ScrapeError)
{
    /// <summary>The first name present wins: vLLM v1, older vLLM, then SGLang.</summary>
    internal static readonly string[] RunningNames = ["vllm:num_requests_running", "sglang:num_running_reqs"];
    internal static readonly string[] WaitingNames = ["vllm:num_requests_waiting", "sglang:num_queue_reqs"];
    internal static readonly string[] KvNames = ["vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc", "sglang:token_usage"];
    internal static readonly string[] PreemptionNames = ["vllm:num_preemptions_total", "vllm:num_preemptions"];
    internal static readonly string[] PromptTokenNames = ["vllm:prompt_tokens_total", "sglang:prompt_tokens_total"];
    internal static readonly string[] GenerationTokenNames = ["vllm:generation_tokens_total", "sglang:generation_tokens_total"];
    internal static readonly string[] DraftNames = ["vllm:spec_decode_num_draft_tokens_total", "vllm:spec_decode_num_draft_tokens"];
    internal static readonly string[] AcceptedNames = ["vllm:spec_decode_num_accepted_tokens_total", "vllm:spec_decode_num_accepted_tokens"];

    internal static double? Pick(IReadOnlyDictionary<string, double>? metrics, string[] names)
    {
        if (metrics is null) return null;
        foreach (var n in names)
            if (metrics.TryGetValue(n, out var v)) return v;
        return null;
    }

    internal static ServerSample From(double timeS, int inFlight, int sent, int finished, IReadOnlyDictionary<string, double>? metrics, string? error) =>
        new(timeS, inFlight, sent, finished,
            Pick(metrics, RunningNames), Pick(metrics, WaitingNames), Pick(metrics, KvNames), Pick(metrics, PreemptionNames),
            Pick(metrics, PromptTokenNames), Pick(metrics, GenerationTokenNames), Pick(metrics, DraftNames), Pick(metrics, AcceptedNames), error);
}
