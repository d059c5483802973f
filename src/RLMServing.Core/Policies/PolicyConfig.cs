namespace RLMServing.Policies;

public enum CompressionPolicy { None, Streaming, Budget, Ratio, Rkv }

public enum SpeculativeMethod { Draft, Ngram, Eagle }

public enum ThinkingBudgetPolicy { None, Static, Adaptive }

/// <summary>
/// <c>kv_cache.compression</c>: which tokens of a decoding request's own output stay in its KV cache. The prompt is
/// always kept (it is the question, and its first tokens are the attention sinks); compression acts on output tokens.
/// Every <see cref="IntervalSteps"/> decode steps of a request, its output KV is cut back to the policy's target
/// (streaming and budget/rkv: a fixed number of tokens; ratio: a fraction of the thinking so far plus the answer).
/// </summary>
public sealed record CompressionConfig(
    CompressionPolicy Policy,
    int BudgetTokens,
    double Ratio,
    int IntervalSteps,
    int ObservationWindow,
    QualityEstimate? Retention)
{
    public static readonly CompressionConfig Off = new(CompressionPolicy.None, 0, 1, 1, 0, null);

    public bool Enabled => Policy != CompressionPolicy.None;

    /// <summary>Output KV entries a request keeps after a compression, given what it has produced so far.</summary>
    public long TargetOutputKv(long outputKv, int thinkingSoFar, int answerSoFar) => Policy switch
    {
        CompressionPolicy.None => outputKv,
        CompressionPolicy.Ratio => Math.Min(outputKv, (long)Math.Ceiling(Ratio * thinkingSoFar) + answerSoFar),
        _ => Math.Min(outputKv, BudgetTokens),
    };

    /// <summary>
    /// Attention pairs scored per compression of a request holding <paramref name="kvTokens"/> entries: the last
    /// <see cref="ObservationWindow"/> queries against every key (SnapKV/H2O/R-KV importance), plus for rkv the
    /// pairwise key similarity among the retained budget (its redundancy term). Streaming scores nothing.
    /// </summary>
    public long ScoringPairs(long kvTokens, long keptTokens) => Policy switch
    {
        CompressionPolicy.None or CompressionPolicy.Streaming => 0,
        CompressionPolicy.Rkv => ObservationWindow * kvTokens + kvTokens * keptTokens,
        _ => ObservationWindow * kvTokens,
    };

    /// <summary>The x value of the retention curve: budget tokens (streaming, budget, rkv) or the kept fraction (ratio).</summary>
    public double QualityX => Policy == CompressionPolicy.Ratio ? Ratio : BudgetTokens;
}

/// <summary>
/// <c>speculative</c>: a draft proposes k tokens per request and step; the target verifies k + 1 positions in one
/// pass; the accepted prefix plus one corrected (or bonus) token is emitted. Draft cost: the draft model's decode
/// (draft), a fraction of the target's decode (eagle heads), a host-side lookup (ngram); each draft step also pays a
/// fixed overhead. Draft memory comes out of the KV budget (<see cref="Memory"/>).
/// </summary>
public sealed record SpeculativeConfig(
    SpeculativeMethod Method,
    string? DraftModel,
    int NumSpeculativeTokens,
    double AcceptanceRate,
    double DraftCostFraction,
    string AcceptanceSource)
{
    /// <summary>Default host-side cost of one n-gram lookup (all k proposals of a step), ms: an estimate, docs/policies.md.</summary>
    public const double NgramLookupMs = 0.05;

    /// <summary>What the draft takes from the KV budget (none unless bound from a scenario or set).</summary>
    public Memory.DraftMemory Memory { get; init; } = RLMServing.Memory.DraftMemory.None;

    /// <summary>
    /// <c>draft_step_overhead_ms</c>: fixed cost of one draft step (a draft-model or EAGLE-head forward, or one n-gram
    /// lookup). Null: the fixed per-iteration term of the cost model pricing the step (draft, eagle), or
    /// <see cref="NgramLookupMs"/> (ngram).
    /// </summary>
    public double? DraftStepOverheadMs { get; init; }

    /// <summary>Expected tokens emitted per step with i.i.d. acceptance a (Leviathan et al. 2023, eq. 1): (1 − a^(k+1)) / (1 − a).</summary>
    public double ExpectedTokensPerStep =>
        AcceptanceRate >= 1 ? NumSpeculativeTokens + 1 : (1 - Math.Pow(AcceptanceRate, NumSpeculativeTokens + 1)) / (1 - AcceptanceRate);
}

/// <summary>
/// <c>thinking_budget</c>: static caps thinking at <see cref="MaxThinkingTokens"/>; adaptive keeps one budget per replica
/// that follows the load at every scheduler turn — max(min, N / (1 + waiting / queue_scale + kv)), where kv is the KV
/// usage above <see cref="KvThreshold"/> scaled to [0, 1] (0 when unset) — moved only past a relative
/// <see cref="Hysteresis"/> band (or to the ceiling or floor). Every running request still thinking follows it:
/// budgets shrink as queues grow and come back as they drain. Accuracy comes from a cited accuracy-vs-budget curve.
/// </summary>
public sealed record ThinkingBudgetConfig(
    ThinkingBudgetPolicy Policy,
    int? MaxThinkingTokens,
    int MinThinkingTokens,
    double QueueScale,
    QualityEstimate? Accuracy)
{
    /// <summary>Adaptive: KV usage (fraction of blocks) above which the cache's fill adds to the load; null: the queue alone.</summary>
    public double? KvThreshold { get; init; }

    /// <summary>Adaptive: the budget in force moves to the target only when they differ by more than this fraction of it.</summary>
    public double Hysteresis { get; init; } = 0.1;

    /// <summary>The smallest adaptive budget: <see cref="MinThinkingTokens"/>, never above the ceiling.</summary>
    public int FloorTokens => Math.Min(MinThinkingTokens, MaxThinkingTokens ?? 0);

    /// <summary>
    /// The target budget while <paramref name="waiting"/> requests wait and <paramref name="kvUsage"/> of the KV blocks
    /// are in use; null when uncapped.
    /// </summary>
    public int? BudgetFor(int waiting, double kvUsage = 0) => Policy switch
    {
        ThinkingBudgetPolicy.None => null,
        ThinkingBudgetPolicy.Static => MaxThinkingTokens,
        _ => MaxThinkingTokens is int n ? Math.Max(FloorTokens, (int)Math.Floor(n / (1.0 + waiting / QueueScale + KvLoad(kvUsage)))) : null,
    };

    /// <summary>A full cache weighs as much as queue_scale waiting requests: (usage − threshold) / (1 − threshold), from 0 to 1.</summary>
    private double KvLoad(double kvUsage) => KvThreshold is double t && kvUsage > t ? (Math.Min(kvUsage, 1) - t) / (1 - t) : 0;

    /// <summary>
    /// Hysteresis: the budget in force becomes the target when it reaches the ceiling or the floor, or differs from the
    /// budget in force by more than <see cref="Hysteresis"/> of it; otherwise it stays. Idempotent: the same target twice moves it once.
    /// </summary>
    public int Follow(int current, int target) =>
        target == current ? current
        : target >= MaxThinkingTokens || target <= FloorTokens || Math.Abs(target - current) > Hysteresis * current ? target
        : current;
}

/// <summary>The serving policies of a scenario; each is off unless its section is given.</summary>
public sealed record PolicyConfig(CompressionConfig Compression, SpeculativeConfig? Speculative, ThinkingBudgetConfig? ThinkingBudget)
{
    public static readonly PolicyConfig None = new(CompressionConfig.Off, null, null);
}
