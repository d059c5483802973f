using RLMServing.Metrics;

namespace RLMServing.Reports;

/// <summary>
/// Result columns and scenario keys in words with their units, for axis titles and labels ("p99 end-to-end latency
/// (ms)" for p99_e2el_ms, "GPU" for hardware.gpu); a key it does not know is shown as its last part in words.
/// </summary>
internal static class ColumnLabels
{
    private static readonly Dictionary<string, string> Metrics = new()
    {
        ["ttft"] = "time to first token",
        ["tpot"] = "time per output token",
        ["itl"] = "inter-token latency",
        ["e2el"] = "end-to-end latency",
        ["ttfat"] = "time to first answer token",
    };

    private static readonly Dictionary<string, string> Known = new()
    {
        ["hardware.gpu"] = "GPU",
        ["hardware.tensor_parallel"] = "tensor parallel degree (GPUs per replica)",
        ["hardware.replicas"] = "replicas",
        ["model"] = "model",
        ["scheduler.batching"] = "batching policy",
        ["scheduler.max_num_seqs"] = "max sequences per batch",
        ["scheduler.max_num_batched_tokens"] = "max tokens per batch",
        ["kv_cache.gpu_memory_utilization"] = "GPU memory utilization (fraction)",
        ["workload.arrival.rate"] = "arrival rate (req/s)",
        ["request_goodput"] = "request goodput (req/s)",
        ["request_throughput"] = "request throughput (req/s)",
        ["output_throughput"] = "output throughput (tokens/s)",
        ["capacity.max_rate"] = "max sustainable rate under the SLO (req/s)",
        ["capacity.gpus_for_target"] = "GPUs needed for the target rate",
        ["cost.usd_per_million_tokens"] = "cost (USD per million output tokens)",
    };

    /// <summary>A column or key in words, with its unit.</summary>
    public static string Describe(string column)
    {
        if (Known.TryGetValue(column, out var known)) return known;
        const string steady = "steady_state.";
        if (column.StartsWith(steady, StringComparison.Ordinal)) return Describe(column[steady.Length..]) + " in steady state";
        if (MetricPercentiles.TryParseKey(column, out var p, out var metric)) return $"p{MetricPercentiles.Word(p)} {Metrics[metric]} (ms)";
        foreach (var stat in new[] { "mean", "median", "std" })
            if (column.StartsWith(stat + "_", StringComparison.Ordinal) && column.EndsWith("_ms", StringComparison.Ordinal)
                && Metrics.TryGetValue(column[(stat.Length + 1)..^3], out var m))
                return $"{stat} {m} (ms)";
        var last = column[(column.LastIndexOf('.') + 1)..];
        return last.Replace('_', ' ');
    }

    /// <summary>An axis value as a short label: the GPU's name, "TP 2", "replicas 4", else "key value".</summary>
    public static string Short(string axis, string value) => axis switch
    {
        "hardware.gpu" or "model" or "scheduler.batching" => value,
        "hardware.tensor_parallel" => $"TP {value}",
        _ => $"{Describe(axis).Split(" (")[0]} {value}",
    };
}
