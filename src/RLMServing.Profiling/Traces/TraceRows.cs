namespace RLMServing.Profiling.Traces;

/// <summary>Timing columns shared by measured rows; times in microseconds.</summary>
public interface ITimedRow
{
    double TimeUsMedian { get; set; }
}

/// <summary>
/// One operator (or operator group, or whole layer) at one shape: the <c>operator</c> trace schema
/// (docs/traces.md). Times are microseconds for the number of layers in <see cref="Layers"/> (1 for per-layer ops).
/// Columns that do not apply to a row are null.
/// </summary>
public sealed class OperatorRow : ITimedRow
{
    /// <summary>Who measured it: rlms-profile, vidur, llmservingsim.</summary>
    public string Source { get; set; } = "";
    public string Device { get; set; } = "";
    public string Model { get; set; } = "";
    public string Dtype { get; set; } = "";
    /// <summary>Canonical operator name (rmsnorm, qkv_proj, rotary, o_proj, mlp, attention, lm_head, layer, ...).</summary>
    public string Op { get; set; } = "";
    /// <summary>The operator's name in the source (Vidur's attn_pre_proj, LLMServingSim's gate_up_proj, ...).</summary>
    public string SourceOp { get; set; } = "";
    /// <summary>prefill, decode, mixed, or empty for token-parallel ops.</summary>
    public string Phase { get; set; } = "";
    public int Tp { get; set; } = 1;
    public int Layers { get; set; } = 1;
    /// <summary>Query tokens processed (rows of the token-parallel matrices).</summary>
    public long Tokens { get; set; }
    /// <summary>Sequences in the batch.</summary>
    public int Batch { get; set; }
    /// <summary>Prefill chunk tokens (one sequence) and the context before the chunk.</summary>
    public long? PrefillTokens { get; set; }
    public long? PrefillContext { get; set; }
    /// <summary>Decode sequences and their KV lengths: sum (what decode attention cost follows) and max.</summary>
    public int? DecodeSeqs { get; set; }
    public long? DecodeContextSum { get; set; }
    public long? DecodeContextMax { get; set; }
    /// <summary>uniform, skewed or linear (how decode KV lengths spread), or a source's label.</summary>
    public string Skew { get; set; } = "";
    /// <summary>Message size for collectives (bytes) and the number of workers.</summary>
    public long? SizeBytes { get; set; }
    public int? Workers { get; set; }
    public double? TimeUsMin { get; set; }
    public double TimeUsMedian { get; set; }
    public double? TimeUsMean { get; set; }
    public double? TimeUsStd { get; set; }
    public double? TimeUsP90 { get; set; }
    public double? TimeUsMax { get; set; }
    public int? Reps { get; set; }
    public int? WarmupReps { get; set; }
    /// <summary>Samples above Tukey's upper fence, left out of mean, std and cv (still in min, median, p90).</summary>
    public int? Outliers { get; set; }
    public double? Cv { get; set; }
    public bool Unstable { get; set; }
    /// <summary>Weights the graph holds (bytes) and KV cache it reads (bytes, computed from the architecture).</summary>
    public long? WeightBytes { get; set; }
    public long? KvBytes { get; set; }
    /// <summary>Peak memory around the measurement: device memory used (CUDA) or process peak resident set (CPU).</summary>
    public long? PeakMemBytes { get; set; }
    /// <summary>Source-specific values as key=value pairs separated by ';'.</summary>
    public string Extra { get; set; } = "";
}

/// <summary>
/// One forward step of a generation loop over a batch: the <c>iteration</c> trace schema. Step 0 is the prefill of
/// the prompt; later steps decode one token per sequence with a growing KV cache.
/// </summary>
public sealed class IterationRow : ITimedRow
{
    public string Source { get; set; } = "";
    public string Device { get; set; } = "";
    public string Model { get; set; } = "";
    public string Dtype { get; set; } = "";
    public int Tp { get; set; } = 1;
    public int Layers { get; set; }
    public int Batch { get; set; }
    public long PromptTokens { get; set; }
    public int Step { get; set; }
    public string Phase { get; set; } = "";
    /// <summary>Tokens each sequence feeds this step (prompt length at prefill, 1 when decoding).</summary>
    public long NewTokens { get; set; }
    /// <summary>KV length per sequence after the step.</summary>
    public long Context { get; set; }
    /// <summary>How the KV cache is held: shared (preallocated buffer, GenAI style) or concat (grown each step).</summary>
    public string KvMode { get; set; } = "";
    public double? TimeUsMin { get; set; }
    public double TimeUsMedian { get; set; }
    public double? TimeUsMean { get; set; }
    public double? TimeUsStd { get; set; }
    public double? TimeUsP90 { get; set; }
    public int? Reps { get; set; }
    public int? Outliers { get; set; }
    public double? Cv { get; set; }
    public bool Unstable { get; set; }
    /// <summary>Tokens per second over the batch at the median step time.</summary>
    public double? TokensPerS { get; set; }
    /// <summary>KV bytes from the architecture (batch × context × bytes per token) and as held by the runtime's tensors.</summary>
    public long? KvBytesComputed { get; set; }
    public long? KvBytesMeasured { get; set; }
    /// <summary>Device memory used (CUDA) or process resident set (CPU) after the step, and the peak so far.</summary>
    public long? MemBytes { get; set; }
    public long? PeakMemBytes { get; set; }
    /// <summary>Splitwise-style extras: end-to-end request time, decode tokens, normalised power.</summary>
    public double? E2eTimeUs { get; set; }
    public long? DecodeTokens { get; set; }
    public double? PeakPower { get; set; }
    public double? AveragePower { get; set; }
    public string Extra { get; set; } = "";
}

/// <summary>One ONNX Runtime profiler event for one graph node: the <c>kernel</c> trace schema (--kernel-trace).</summary>
public sealed class KernelRow
{
    public string Device { get; set; } = "";
    public string Model { get; set; } = "";
    public string Graph { get; set; } = "";
    /// <summary>The configuration this run belonged to, as in the operator rows (e.g. "tokens=128").</summary>
    public string Config { get; set; } = "";
    public int Run { get; set; }
    public string Node { get; set; } = "";
    public string OpType { get; set; } = "";
    public string Provider { get; set; } = "";
    public double DurUs { get; set; }
    public double TsUs { get; set; }
}

/// <summary>Fitted coefficients from a source that published fits rather than samples: the <c>coefficients</c> schema.</summary>
public sealed class CoefficientRow
{
    public string Source { get; set; } = "";
    public string Device { get; set; } = "";
    public string Engine { get; set; } = "";
    public string Model { get; set; } = "";
    public int Tp { get; set; } = 1;
    public int Pp { get; set; } = 1;
    /// <summary>What is fitted: prefill, decoding_smallbs, decoding_largebs, kv_capacity, skew_alpha.</summary>
    public string Kind { get; set; } = "";
    /// <summary>The fitted formula with its unit, e.g. "time_ms = a + b*sum_len + c*sum_len^2".</summary>
    public string Formula { get; set; } = "";
    public double? A { get; set; }
    public double? B { get; set; }
    public double? C { get; set; }
    public double? Threshold { get; set; }
    public string Bucket { get; set; } = "";
    public long? Samples { get; set; }
}
