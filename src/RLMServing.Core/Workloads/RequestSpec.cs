namespace RLMServing.Workloads;

/// <summary>
/// One request as the simulator receives it: when it arrives and how many tokens it reads and writes.
/// Output = thinking + answer. For closed-loop workloads the arrival time is assigned by the simulator.
/// </summary>
public sealed record RequestSpec(
    long Id,
    double ArrivalTimeS,
    int PromptTokens,
    int ThinkingTokens,
    int AnswerTokens,
    int Priority = 0,
    string? SessionId = null,
    bool ThinkingTruncated = false)
{
    public int OutputTokens => ThinkingTokens + AnswerTokens;

    /// <summary>
    /// Prefix identity for prefix caching and prefix-affinity routing: unit j covers tokens [j*U, (j+1)*U) of the
    /// context (U = <see cref="PrefixHashTokens"/>) and its id names the whole prefix up to the unit's end, so two
    /// requests with the same id at unit j share every token before it (Mooncake hash_ids, U = 512; one id with
    /// U = int.MaxValue for a multi-turn session's growing context or a shared system prompt of U tokens).
    /// </summary>
    public long[]? PrefixHashes { get; init; }

    public int PrefixHashTokens { get; init; }

    /// <summary>Parallel sampling (workload.n &gt; 1): the prompt this request is a sample of; null when n = 1.</summary>
    public long? PromptId { get; init; }

    /// <summary>Which of its prompt's n samples this request is (0 prefills the prompt; the others share its KV).</summary>
    public int SampleIndex { get; init; }

    /// <summary>
    /// Tokens of this request's context its prefix identity covers: the whole context (prompt and output, which the
    /// next turn of a session reads again) when <see cref="PrefixHashTokens"/> is int.MaxValue, else at most the prompt.
    /// </summary>
    public long PrefixCoveredTokens => PrefixHashes is null ? 0
        : PrefixHashTokens == int.MaxValue ? (long)PromptTokens + OutputTokens
        : Math.Min((long)PrefixHashes.Length * PrefixHashTokens, PromptTokens);
}
