using System.Text.Json.Serialization;

namespace RLMServing.Metrics;

/// <summary>
/// summary.json. Keys follow vLLM's benchmark result files where the metric exists there (so existing tooling
/// reads it); RLMServing's own metrics sit beside them. Latencies in ms, duration in s, throughputs per second.
/// </summary>
public sealed record RunSummary
{
    [JsonPropertyName("scenario")] public string Scenario { get; init; } = "";
    [JsonPropertyName("variant")] public string? Variant { get; init; }
    [JsonPropertyName("model")] public string Model { get; init; } = "";
    [JsonPropertyName("gpu")] public string Gpu { get; init; } = "";
    [JsonPropertyName("replicas")] public int Replicas { get; init; }
    [JsonPropertyName("tensor_parallel")] public int TensorParallel { get; init; }
    [JsonPropertyName("batching")] public string Batching { get; init; } = "";
    [JsonPropertyName("seed")] public int Seed { get; init; }

    [JsonPropertyName("completed")] public int Completed { get; init; }
    [JsonPropertyName("failed")] public int Failed { get; init; }
    [JsonPropertyName("duration")] public double Duration { get; init; }
    [JsonPropertyName("total_input_tokens")] public long TotalInputTokens { get; init; }
    [JsonPropertyName("total_output_tokens")] public long TotalOutputTokens { get; init; }
    [JsonPropertyName("request_throughput")] public double RequestThroughput { get; init; }
    [JsonPropertyName("request_goodput")] public double? RequestGoodput { get; init; }
    [JsonPropertyName("output_throughput")] public double OutputThroughput { get; init; }
    [JsonPropertyName("total_token_throughput")] public double TotalTokenThroughput { get; init; }

    [JsonPropertyName("mean_ttft_ms")] public double MeanTtftMs { get; init; }
    [JsonPropertyName("median_ttft_ms")] public double MedianTtftMs { get; init; }
    [JsonPropertyName("std_ttft_ms")] public double StdTtftMs { get; init; }
    [JsonPropertyName("p90_ttft_ms")] public double P90TtftMs { get; init; }
    [JsonPropertyName("p99_ttft_ms")] public double P99TtftMs { get; init; }
    [JsonPropertyName("mean_tpot_ms")] public double MeanTpotMs { get; init; }
    [JsonPropertyName("median_tpot_ms")] public double MedianTpotMs { get; init; }
    [JsonPropertyName("std_tpot_ms")] public double StdTpotMs { get; init; }
    [JsonPropertyName("p90_tpot_ms")] public double P90TpotMs { get; init; }
    [JsonPropertyName("p99_tpot_ms")] public double P99TpotMs { get; init; }
    [JsonPropertyName("mean_itl_ms")] public double MeanItlMs { get; init; }
    [JsonPropertyName("median_itl_ms")] public double MedianItlMs { get; init; }
    [JsonPropertyName("std_itl_ms")] public double StdItlMs { get; init; }
    [JsonPropertyName("p90_itl_ms")] public double P90ItlMs { get; init; }
    [JsonPropertyName("p99_itl_ms")] public double P99ItlMs { get; init; }
    [JsonPropertyName("mean_e2el_ms")] public double MeanE2elMs { get; init; }
    [JsonPropertyName("median_e2el_ms")] public double MedianE2elMs { get; init; }
    [JsonPropertyName("std_e2el_ms")] public double StdE2elMs { get; init; }
    [JsonPropertyName("p90_e2el_ms")] public double P90E2elMs { get; init; }
    [JsonPropertyName("p99_e2el_ms")] public double P99E2elMs { get; init; }

    // RLMServing's own metrics.
    [JsonPropertyName("mean_ttfat_ms")] public double MeanTtfatMs { get; init; }
    [JsonPropertyName("median_ttfat_ms")] public double MedianTtfatMs { get; init; }
    [JsonPropertyName("p99_ttfat_ms")] public double P99TtfatMs { get; init; }
    [JsonPropertyName("rejected")] public int Rejected { get; init; }
    [JsonPropertyName("preemptions")] public long Preemptions { get; init; }
    [JsonPropertyName("peak_kv_cache_usage")] public double PeakKvCacheUsage { get; init; }
    [JsonPropertyName("mean_kv_cache_usage")] public double MeanKvCacheUsage { get; init; }
    [JsonPropertyName("kv_cache_capacity_tokens")] public long KvCacheCapacityTokens { get; init; }
    [JsonPropertyName("gpu_busy_fraction")] public double GpuBusyFraction { get; init; }
    [JsonPropertyName("mean_batch_size")] public double MeanBatchSize { get; init; }
    [JsonPropertyName("iterations")] public long Iterations { get; init; }
    [JsonPropertyName("est_bandwidth_utilization")] public double EstBandwidthUtilization { get; init; }
    [JsonPropertyName("est_compute_utilization")] public double EstComputeUtilization { get; init; }
    [JsonPropertyName("mean_thinking_tokens")] public double MeanThinkingTokens { get; init; }
    [JsonPropertyName("thinking_truncated")] public int ThinkingTruncated { get; init; }
    [JsonPropertyName("prefix_cache_hit_rate")] public double? PrefixCacheHitRate { get; init; }
    /// <summary>Parallel sampling: samples per prompt (workload.n); absent when 1.</summary>
    [JsonPropertyName("parallel_samples")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public int? ParallelSamples { get; init; }
    /// <summary>Parallel sampling: prompt tokens samples 1..n-1 read from shared (cached) KV instead of prefilling them.</summary>
    [JsonPropertyName("shared_prompt_tokens")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public long? SharedPromptTokens { get; init; }
    /// <summary>Parallel sampling: the same as KV blocks a prompt's samples did not allocate a second time.</summary>
    [JsonPropertyName("shared_prompt_blocks")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public long? SharedPromptBlocks { get; init; }
    [JsonPropertyName("swap_outs")] public long SwapOuts { get; init; }
    [JsonPropertyName("swap_space_exhausted")] public long SwapSpaceExhausted { get; init; }
    [JsonPropertyName("kv_transfers")] public long KvTransfers { get; init; }
    [JsonPropertyName("mean_kv_transfer_ms")] public double MeanKvTransferMs { get; init; }
    [JsonPropertyName("unstable")] public bool Unstable { get; init; }
    [JsonPropertyName("unstable_reason")] public string? UnstableReason { get; init; }

    // Serving policies (docs/policies.md): KV memory with and without compression, quality estimates, speculation.
    [JsonPropertyName("peak_kv_cache_gib")] public double PeakKvCacheGib { get; init; }
    [JsonPropertyName("mean_kv_cache_gib")] public double MeanKvCacheGib { get; init; }
    [JsonPropertyName("peak_kv_cache_uncompressed_gib")] public double PeakKvCacheUncompressedGib { get; init; }
    [JsonPropertyName("mean_kv_cache_uncompressed_gib")] public double MeanKvCacheUncompressedGib { get; init; }
    [JsonPropertyName("kv_tokens_evicted")] public long KvTokensEvicted { get; init; }
    [JsonPropertyName("estimated_accuracy_retention")] public double? EstimatedAccuracyRetention { get; init; }
    [JsonPropertyName("mean_accepted_tokens_per_step")] public double? MeanAcceptedTokensPerStep { get; init; }
    [JsonPropertyName("spec_decode_acceptance_rate")] public double? SpecDecodeAcceptanceRate { get; init; }
    /// <summary>Speculative decoding: GiB per GPU taken from the KV budget (draft weights + draft KV for the whole cache; the largest over groups).</summary>
    [JsonPropertyName("speculative_reserved_gib")] public double? SpeculativeReservedGib { get; init; }
    [JsonPropertyName("estimated_accuracy")] public double? EstimatedAccuracy { get; init; }
    /// <summary>Thinking budget in force, weighted by iteration time (adaptive: it moves with the load); null without a budget.</summary>
    [JsonPropertyName("mean_thinking_budget")] public double? MeanThinkingBudget { get; init; }
    /// <summary>True when every percentile limit of the scenario's slo (p95_ttft_ms, …) holds over the steady window; absent without such limits.</summary>
    [JsonPropertyName("slo_met")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public bool? SloMet { get; init; }
    /// <summary>The steady window (warm-up and drain left out) and the SLO metrics over it (docs/metrics.md).</summary>
    [JsonPropertyName("steady_state")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public SteadyStateSummary? SteadyState { get; init; }
    /// <summary>
    /// Percentile keys beyond the fixed p90/p99 ones, from metrics.percentiles (p95_ttft_ms, p99.9_e2el_ms, …):
    /// written as top-level keys of summary.json. Values are doubles when built, JSON numbers when read back.
    /// </summary>
    [JsonExtensionData]
    public Dictionary<string, object>? Percentiles { get; init; }
    /// <summary>The merged ITL sketch the ITL statistics came from, so further percentiles can be read (not written).</summary>
    [JsonIgnore]
    public QuantileSketch? ItlSketch { get; init; }

    /// <summary>The ITL samples by time, from which the steady window's ITL percentiles are read (not written).</summary>
    [JsonIgnore]
    public TimedQuantileSketch? ItlByTime { get; init; }
    /// <summary>The steady window the stability verdict came from, so completing the summary does not analyse the run again (not written).</summary>
    [JsonIgnore]
    public SteadyWindow? SteadyWindow { get; init; }
    /// <summary>The sorted latencies the statistics came from, so completing the summary does not sort them again (not written).</summary>
    [JsonIgnore]
    public LatencySamples? Latencies { get; init; }
    /// <summary>Shapes the run reached far outside its calibration's measured grid (absent when none).</summary>
    [JsonPropertyName("calibration_warnings")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public List<string>? CalibrationWarnings { get; init; }
}

/// <summary>
/// summary.json's <c>steady_state</c>: the window between the warm-up and the last arrival, and the metrics that judge
/// an SLO computed over the requests that arrived in it (rates over the completions inside it).
/// </summary>
public sealed record SteadyStateSummary
{
    [JsonPropertyName("start_s")] public double StartS { get; init; }
    [JsonPropertyName("end_s")] public double EndS { get; init; }
    [JsonPropertyName("warmup_s")] public double WarmupS { get; init; }
    [JsonPropertyName("drain_s")] public double DrainS { get; init; }
    [JsonPropertyName("requests")] public int Requests { get; init; }
    [JsonPropertyName("completed")] public int Completed { get; init; }
    [JsonPropertyName("request_throughput")] public double RequestThroughput { get; init; }
    [JsonPropertyName("output_throughput")] public double OutputThroughput { get; init; }
    [JsonPropertyName("request_goodput")] public double? RequestGoodput { get; init; }
    [JsonPropertyName("goodput_fraction")] public double? GoodputFraction { get; init; }
    [JsonPropertyName("mean_ttft_ms")] public double MeanTtftMs { get; init; }
    [JsonPropertyName("mean_tpot_ms")] public double MeanTpotMs { get; init; }
    [JsonPropertyName("mean_e2el_ms")] public double MeanE2elMs { get; init; }
    [JsonPropertyName("mean_ttfat_ms")] public double MeanTtfatMs { get; init; }
    /// <summary>p99 of (completion − first schedule) over the window's requests: how long the longest requests are served.</summary>
    [JsonPropertyName("p99_service_s")] public double P99ServiceS { get; init; }
    [JsonPropertyName("queueing_delay_trend_p")] public double? QueueingDelayTrendP { get; init; }
    [JsonPropertyName("queue_length_trend_p")] public double? QueueLengthTrendP { get; init; }
    /// <summary>pNN_ttft_ms, pNN_tpot_ms, pNN_e2el_ms, pNN_ttfat_ms for every percentile of metrics.percentiles.</summary>
    [JsonExtensionData]
    public Dictionary<string, object>? Percentiles { get; init; }
}
