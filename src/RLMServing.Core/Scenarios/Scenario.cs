using RLMServing.Workloads;

namespace RLMServing.Scenarios;

/// <summary>
/// A batching policy by its scenario name (<c>scheduler.batching</c>); the planner behind each name is in the batch
/// planner registry (Simulation/Batching/BatchPlanners.cs), so a new policy is one class and one registry line.
/// <see cref="ToString"/> gives the label summary.json carries.
/// </summary>
public readonly record struct BatchingPolicy(string Name, string Label)
{
    public static readonly BatchingPolicy Static = new("static", "Static");
    public static readonly BatchingPolicy Continuous = new("continuous", "Continuous");
    public static readonly BatchingPolicy ChunkedPrefill = new("chunked_prefill", "ChunkedPrefill");
    public static readonly BatchingPolicy VllmV1 = new("vllm_v1", "VllmV1");
    public static readonly BatchingPolicy VllmV0 = new("vllm_v0", "VllmV0");

    public override string ToString() => Label;
}

public enum QueueOrder { Fcfs, Sjf, Priority }

public enum PreemptionMode { Recompute, Swap }

public enum RouterKind { RoundRobin, Random, LeastOutstanding, LeastKv, PowerOfTwo, PrefixAffinity }

/// <summary>How an engine runs an iteration: one fused forward pass, or one call per prefill chunk plus one for the decodes.</summary>
public enum IterationCalls { One, PerPrefillChunk }

/// <summary>GPU type and how many replicas of what tensor-parallel degree serve the model.</summary>
/// <param name="ExpertParallel">A mixture-of-experts model's experts spread over the data-parallel replicas (each holds experts / replicas).</param>
public sealed record HardwareConfig(string Gpu, int Replicas, int TensorParallel, bool ExpertParallel = false);

/// <summary>Which cost model prices each iteration, with the roofline model's efficiency knobs.</summary>
public sealed record CostModelConfig(
    string Kind,
    string? File,
    double ComputeEfficiency,
    double BandwidthEfficiency,
    double StepOverheadMs,
    double AllReduceLatencyUs,
    Calibration.CalibrationFile? Calibration = null,
    IterationCalls Calls = IterationCalls.One)
{
    /// <summary>
    /// Host time added to every iteration (cost_model.host_overhead_us; default: a calibration's measured
    /// host_overhead, else 0): the engine's scheduling and bookkeeping between its measured steps.
    /// </summary>
    public double HostOverheadUs { get; init; }

    /// <summary>
    /// The machine's speed over the run (cost_model.slowdown): every priced iteration's time times the factor at its
    /// start. Null: the cost model's prices as they are.
    /// </summary>
    public Costs.Slowdown? Slowdown { get; init; }

    /// <summary>Where <see cref="Slowdown"/> came from: the file read, or null for a constant given in the scenario.</summary>
    public string? SlowdownFile { get; init; }

    /// <summary>With <see cref="SlowdownFile"/>: the averaging window (s) and how its rows were read (file or calibration).</summary>
    public (double WindowS, string Reference)? SlowdownRead { get; init; }
}

public sealed record SchedulerConfig(
    BatchingPolicy Batching,
    int MaxNumSeqs,
    int MaxNumBatchedTokens,
    QueueOrder Queue,
    PreemptionMode Preemption,
    double BatchTimeoutMs,
    RouterKind Router)
{
    /// <summary>The most prefill tokens one request takes in one step (vLLM's long_prefill_token_threshold); 0: no cap.</summary>
    public int LongPrefillTokenThreshold { get; init; }

    /// <summary>
    /// vLLM 0.2.2-0.2.x's padded prefill batches (its scheduler's max_paddings; scheduler.batching: vllm_v0 only): the
    /// prompts of one prefill step run as a batch x longest-prompt tensor, the padded size counts against
    /// max_num_batched_tokens, and no prompt joins a step whose padding would pass this many tokens. Null: prompts
    /// are packed without padding (vLLM V0 0.6-0.8, V1).
    /// </summary>
    public int? MaxPaddings { get; init; }
}

public sealed record KvCacheConfig(int BlockSize, double GpuMemoryUtilization, double? ActivationReserveGib)
{
    /// <summary>Prefix caching, swap space and admission watermark (docs/scenarios.md, kv_cache).</summary>
    public MemoryPolicyConfig Memory { get; init; } = MemoryPolicyConfig.Default;
}

/// <summary>Service-level objectives; a request counts towards goodput when it meets every one that is set.</summary>
public sealed record SloConfig(double? TtftMs, double? TpotMs, double? E2elMs)
{
    /// <summary>True when a per-request limit is set (what goodput counts); percentile limits are <see cref="Limits"/>.</summary>
    public bool IsSet => TtftMs is not null || TpotMs is not null || E2elMs is not null;

    /// <summary>Limits on percentile keys of the run (p95_ttft_ms: 2000), judged over the steady window (summary slo_met).</summary>
    public IReadOnlyList<(string Key, double LimitMs)> Limits { get; init; } = [];
}

/// <summary>Reporting settings: the time series' sampling interval and the percentiles summaries carry.</summary>
public sealed record MetricsConfig(double TimeseriesIntervalS)
{
    /// <summary>metrics.percentiles: the pNN_*_ms keys written (the fixed p90/p99 keys always are).</summary>
    public IReadOnlyList<double> Percentiles { get; init; } = RLMServing.Metrics.MetricPercentiles.Default;
}

/// <summary>Engine switches: fast_forward advances steady decode stretches in closed form (identical results).</summary>
public sealed record SimulationConfig(bool FastForward);

/// <summary>A named set of dotted-key overrides run side by side with the other variants.</summary>
public sealed record VariantSpec(string Name, IReadOnlyDictionary<string, object?> Set);

/// <summary>A fully bound, validated scenario: what the simulator runs.</summary>
public sealed record Scenario(
    string Name,
    int Seed,
    HardwareConfig Hardware,
    string Model,
    CostModelConfig CostModel,
    SyntheticWorkload? Workload,
    IReadOnlyList<RequestSpec>? ReplayRequests,
    SchedulerConfig Scheduler,
    KvCacheConfig KvCache,
    SloConfig Slo,
    MetricsConfig Metrics,
    SimulationConfig Simulation,
    Policies.PolicyConfig? Policies = null)
{
    /// <summary>KV compression, speculative decoding and thinking budgets; all off when the scenario names none.</summary>
    public Policies.PolicyConfig PoliciesOrNone => Policies ?? RLMServing.Policies.PolicyConfig.None;

    /// <summary>Replica groups and cluster-level policies; null means the single group that <c>hardware</c> describes.</summary>
    public ClusterConfig? Cluster { get; init; }

    /// <summary>Shared system prompts prepended to every request (synthetic workloads and dataset presets).</summary>
    public SystemPromptConfig? SystemPrompt { get; init; }

    /// <summary>
    /// The serving engine modelled (<c>engine</c>; scenario files default to vLLM V1). Scenarios built in code model
    /// no engine-specific execution rules (eager, host work in series) unless they say so.
    /// </summary>
    public EngineConfig Engine { get; init; } = EngineConfig.OrtEngine;

    /// <summary>
    /// Closed batches for a dataset preset's requests (<c>workload.arrival</c>); a synthetic workload carries its
    /// arrival process itself. Null: the requests' own arrival times.
    /// </summary>
    public ClosedBatchArrivals? DatasetBatches { get; init; }

    /// <summary>The closed batches the requests are sent in (synthetic workload or dataset preset), or null.</summary>
    public ClosedBatchArrivals? ClosedBatches => Workload?.Arrival as ClosedBatchArrivals ?? DatasetBatches;

    /// <summary>The requests the simulator runs: replayed or generated from the seed, with shared system prompts applied.</summary>
    public IReadOnlyList<RequestSpec> Requests()
    {
        var requests = ReplayRequests ?? Workload!.Generate(Seed);
        if (SystemPrompt is { } sp) requests = sp.Apply(requests, Seed);
        return ParallelSampling.Sampled(requests) ? ParallelSampling.SharePrompts(requests) : requests;
    }
}
