namespace RLMServing.Metrics;

public enum RequestStatus { Completed, Rejected }

/// <summary>
/// One row of requests.parquet: the same schema for simulated and measured runs. Times in seconds from the start
/// of the run; latencies in milliseconds. TPOT follows vLLM: (e2el - ttft) / (output_tokens - 1).
/// </summary>
public sealed record RequestRecord(
    long RequestId,
    double ArrivalTimeS,
    int PromptTokens,
    int OutputTokens,
    int ThinkingTokens,
    RequestStatus Status,
    double? FirstScheduledTimeS,
    double? FirstTokenTimeS,
    double? FirstAnswerTokenTimeS,
    double? CompletionTimeS,
    int Preemptions,
    int Replica,
    string? RejectReason,
    bool ThinkingTruncated)
{
    /// <summary>Prompt tokens served from the prefix cache (vLLM's num_cached_tokens; the largest over re-admissions).</summary>
    public int CachedPromptTokens { get; init; }

    /// <summary>Parallel sampling: the prompt this row is a sample of (null when workload.n is 1).</summary>
    public long? PromptId { get; init; }

    /// <summary>Parallel sampling: the sample's index among its prompt's n samples.</summary>
    public int SampleIndex { get; init; }

    public double? TtftMs => FirstTokenTimeS is { } f ? (f - ArrivalTimeS) * 1000 : null;
    public double? TtfatMs => FirstAnswerTokenTimeS is { } f ? (f - ArrivalTimeS) * 1000 : null;
    public double? E2elMs => CompletionTimeS is { } c ? (c - ArrivalTimeS) * 1000 : null;

    public double? TpotMs => CompletionTimeS is { } c && FirstTokenTimeS is { } f && OutputTokens > 1
        ? (c - f) * 1000 / (OutputTokens - 1)
        : null;
}

/// <summary>One row of timeseries.parquet: a replica's queue, batch and KV use at a moment of simulated time.</summary>
public readonly record struct TimeseriesPoint(double TimeS, int Replica, int Waiting, int Running, long KvBlocksUsed, double KvUsage);
