using System.Text.Json.Serialization;

namespace RLMServing.Profiling.Traces;

// On-disk column names are snake_case, as in the project's other Parquet schemas: ParquetSerializer takes a column's
// name from [JsonPropertyName] when writing and reading. The C# property names are unchanged (docs/traces.md).

/// <summary>Timing columns shared by measured rows; times in microseconds.</summary>
public interface ITimedRow
{
    double? TimeUsMin { get; set; }
    double TimeUsMedian { get; set; }
    double? TimeUsMean { get; set; }
    double? TimeUsStd { get; set; }
    double? TimeUsP90 { get; set; }
    int? Reps { get; set; }
    int? Outliers { get; set; }
    double? Cv { get; set; }
    bool Unstable { get; set; }
}

/// <summary>
/// One operator (or operator group, or whole layer) at one shape: the <c>operator</c> trace schema
/// (docs/traces.md). Times are microseconds for the number of layers in <see cref="Layers"/> (1 for per-layer ops).
/// Columns that do not apply to a row are null.
/// </summary>
public sealed class OperatorRow : ITimedRow
{
    /// <summary>Who measured it: rlms-profile, vidur, llmservingsim.</summary>
    [JsonPropertyName("source")] public string Source { get; set; } = "";
    [JsonPropertyName("device")] public string Device { get; set; } = "";
    [JsonPropertyName("model")] public string Model { get; set; } = "";
    [JsonPropertyName("dtype")] public string Dtype { get; set; } = "";
    /// <summary>Canonical operator name (rmsnorm, qkv_proj, rotary, o_proj, mlp, attention, lm_head, layer, ...).</summary>
    [JsonPropertyName("op")] public string Op { get; set; } = "";
    /// <summary>The operator's name in the source (Vidur's attn_pre_proj, LLMServingSim's gate_up_proj, ...).</summary>
    [JsonPropertyName("source_op")] public string SourceOp { get; set; } = "";
    /// <summary>prefill, decode, mixed, or empty for token-parallel ops.</summary>
    [JsonPropertyName("phase")] public string Phase { get; set; } = "";
    [JsonPropertyName("tp")] public int Tp { get; set; } = 1;
    [JsonPropertyName("layers")] public int Layers { get; set; } = 1;
    /// <summary>Query tokens processed (rows of the token-parallel matrices).</summary>
    [JsonPropertyName("tokens")] public long Tokens { get; set; }
    /// <summary>Sequences in the batch.</summary>
    [JsonPropertyName("batch")] public int Batch { get; set; }
    /// <summary>Prefill chunk tokens (one sequence) and the context before the chunk.</summary>
    [JsonPropertyName("prefill_tokens")] public long? PrefillTokens { get; set; }
    [JsonPropertyName("prefill_context")] public long? PrefillContext { get; set; }
    /// <summary>Decode sequences and their KV lengths: sum (what decode attention cost follows) and max.</summary>
    [JsonPropertyName("decode_seqs")] public int? DecodeSeqs { get; set; }
    [JsonPropertyName("decode_context_sum")] public long? DecodeContextSum { get; set; }
    [JsonPropertyName("decode_context_max")] public long? DecodeContextMax { get; set; }
    /// <summary>uniform, skewed or linear (how decode KV lengths spread), or a source's label.</summary>
    [JsonPropertyName("skew")] public string Skew { get; set; } = "";
    /// <summary>Message size for collectives (bytes) and the number of workers.</summary>
    [JsonPropertyName("size_bytes")] public long? SizeBytes { get; set; }
    [JsonPropertyName("workers")] public int? Workers { get; set; }
    [JsonPropertyName("time_us_min")] public double? TimeUsMin { get; set; }
    [JsonPropertyName("time_us_median")] public double TimeUsMedian { get; set; }
    [JsonPropertyName("time_us_mean")] public double? TimeUsMean { get; set; }
    [JsonPropertyName("time_us_std")] public double? TimeUsStd { get; set; }
    [JsonPropertyName("time_us_p90")] public double? TimeUsP90 { get; set; }
    [JsonPropertyName("time_us_max")] public double? TimeUsMax { get; set; }
    [JsonPropertyName("reps")] public int? Reps { get; set; }
    [JsonPropertyName("warmup_reps")] public int? WarmupReps { get; set; }
    /// <summary>Samples above Tukey's upper fence, left out of mean, std and cv (still in min, median, p90).</summary>
    [JsonPropertyName("outliers")] public int? Outliers { get; set; }
    [JsonPropertyName("cv")] public double? Cv { get; set; }
    [JsonPropertyName("unstable")] public bool Unstable { get; set; }
    /// <summary>Weights the graph holds (bytes) and KV cache it reads (bytes, computed from the architecture).</summary>
    [JsonPropertyName("weight_bytes")] public long? WeightBytes { get; set; }
    [JsonPropertyName("kv_bytes")] public long? KvBytes { get; set; }
    /// <summary>Peak memory around the measurement: device memory used (CUDA) or process peak resident set (CPU).</summary>
    [JsonPropertyName("peak_mem_bytes")] public long? PeakMemBytes { get; set; }
    /// <summary>Source-specific values as key=value pairs separated by ';'.</summary>
    [JsonPropertyName("extra")] public string Extra { get; set; } = "";
}

/// <summary>
/// One forward step of a generation loop over a batch: the <c>iteration</c> trace schema. Step 0 is the prefill of
/// the prompt; later steps decode one token per sequence with a growing KV cache.
/// </summary>
public sealed class IterationRow : ITimedRow
{
    [JsonPropertyName("source")] public string Source { get; set; } = "";
    [JsonPropertyName("device")] public string Device { get; set; } = "";
    [JsonPropertyName("model")] public string Model { get; set; } = "";
    [JsonPropertyName("dtype")] public string Dtype { get; set; } = "";
    [JsonPropertyName("tp")] public int Tp { get; set; } = 1;
    [JsonPropertyName("layers")] public int Layers { get; set; }
    [JsonPropertyName("batch")] public int Batch { get; set; }
    [JsonPropertyName("prompt_tokens")] public long PromptTokens { get; set; }
    [JsonPropertyName("step")] public int Step { get; set; }
    [JsonPropertyName("phase")] public string Phase { get; set; } = "";
    /// <summary>Tokens each sequence feeds this step (prompt length at prefill, 1 when decoding).</summary>
    [JsonPropertyName("new_tokens")] public long NewTokens { get; set; }
    /// <summary>KV length per sequence after the step.</summary>
    [JsonPropertyName("context")] public long Context { get; set; }
    /// <summary>How the KV cache is held: shared (preallocated buffer, GenAI style) or concat (grown each step).</summary>
    [JsonPropertyName("kv_mode")] public string KvMode { get; set; } = "";
    [JsonPropertyName("time_us_min")] public double? TimeUsMin { get; set; }
    [JsonPropertyName("time_us_median")] public double TimeUsMedian { get; set; }
    [JsonPropertyName("time_us_mean")] public double? TimeUsMean { get; set; }
    [JsonPropertyName("time_us_std")] public double? TimeUsStd { get; set; }
    [JsonPropertyName("time_us_p90")] public double? TimeUsP90 { get; set; }
    [JsonPropertyName("reps")] public int? Reps { get; set; }
    [JsonPropertyName("outliers")] public int? Outliers { get; set; }
    [JsonPropertyName("cv")] public double? Cv { get; set; }
    [JsonPropertyName("unstable")] public bool Unstable { get; set; }
    /// <summary>Tokens per second over the batch at the median step time.</summary>
    [JsonPropertyName("tokens_per_s")] public double? TokensPerS { get; set; }
    /// <summary>KV bytes from the architecture (batch × context × bytes per token) and as held by the runtime's tensors.</summary>
    [JsonPropertyName("kv_bytes_computed")] public long? KvBytesComputed { get; set; }
    [JsonPropertyName("kv_bytes_measured")] public long? KvBytesMeasured { get; set; }
    /// <summary>Device memory used (CUDA) or process resident set (CPU) after the step, and the peak so far.</summary>
    [JsonPropertyName("mem_bytes")] public long? MemBytes { get; set; }
    [JsonPropertyName("peak_mem_bytes")] public long? PeakMemBytes { get; set; }
    /// <summary>Splitwise-style extras: end-to-end request time, decode tokens, normalised power.</summary>
    [JsonPropertyName("e2e_time_us")] public double? E2eTimeUs { get; set; }
    [JsonPropertyName("decode_tokens")] public long? DecodeTokens { get; set; }
    [JsonPropertyName("peak_power")] public double? PeakPower { get; set; }
    [JsonPropertyName("average_power")] public double? AveragePower { get; set; }
    [JsonPropertyName("extra")] public string Extra { get; set; } = "";
}

/// <summary>One ONNX Runtime profiler event for one graph node: the <c>kernel</c> trace schema (--kernel-trace).</summary>
public sealed class KernelRow
{
    [JsonPropertyName("device")] public string Device { get; set; } = "";
    [JsonPropertyName("model")] public string Model { get; set; } = "";
    [JsonPropertyName("graph")] public string Graph { get; set; } = "";
    /// <summary>The configuration this run belonged to, as in the operator rows (e.g. "tokens=128").</summary>
    [JsonPropertyName("config")] public string Config { get; set; } = "";
    [JsonPropertyName("run")] public int Run { get; set; }
    [JsonPropertyName("node")] public string Node { get; set; } = "";
    [JsonPropertyName("op_type")] public string OpType { get; set; } = "";
    [JsonPropertyName("provider")] public string Provider { get; set; } = "";
    [JsonPropertyName("dur_us")] public double DurUs { get; set; }
    [JsonPropertyName("ts_us")] public double TsUs { get; set; }
}

/// <summary>Fitted coefficients from a source that published fits rather than samples: the <c>coefficients</c> schema.</summary>
public sealed class CoefficientRow
{
    [JsonPropertyName("source")] public string Source { get; set; } = "";
    [JsonPropertyName("device")] public string Device { get; set; } = "";
    [JsonPropertyName("engine")] public string Engine { get; set; } = "";
    [JsonPropertyName("model")] public string Model { get; set; } = "";
    [JsonPropertyName("tp")] public int Tp { get; set; } = 1;
    [JsonPropertyName("pp")] public int Pp { get; set; } = 1;
    /// <summary>What is fitted: prefill, decoding_smallbs, decoding_largebs, kv_capacity, skew_alpha.</summary>
    [JsonPropertyName("kind")] public string Kind { get; set; } = "";
    /// <summary>The fitted formula with its unit, e.g. "time_ms = a + b*sum_len + c*sum_len^2".</summary>
    [JsonPropertyName("formula")] public string Formula { get; set; } = "";
    [JsonPropertyName("a")] public double? A { get; set; }
    [JsonPropertyName("b")] public double? B { get; set; }
    [JsonPropertyName("c")] public double? C { get; set; }
    [JsonPropertyName("threshold")] public double? Threshold { get; set; }
    [JsonPropertyName("bucket")] public string Bucket { get; set; } = "";
    [JsonPropertyName("samples")] public long? Samples { get; set; }
}
