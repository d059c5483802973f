using System.Text.Json.Serialization;

namespace RLMServing.Calibration;

/// <summary>
/// A calibration's measured per-layer operator tables (LLMServingSim's profile: dense.csv, per_sequence.csv,
/// attention.csv, moe.csv, µs per single layer), composed into an iteration at simulation time exactly as
/// LLMServingSim's simulator composes them (<see cref="Costs.OperatorTableCostModel"/>).
/// </summary>
public sealed record OperatorTables
{
    /// <summary>Decoder layers the per-layer operators repeat over.</summary>
    [JsonPropertyName("layers")] public int Layers { get; init; }
    /// <summary>Token-parallel operators of one layer and how many times each runs in it (two RMSNorms in a Llama layer).</summary>
    [JsonPropertyName("per_layer")] public Dictionary<string, int> PerLayer { get; init; } = new();
    /// <summary>Token-parallel operators that run once per iteration (embedding, final norm).</summary>
    [JsonPropertyName("per_iteration")] public List<string> PerIteration { get; init; } = [];
    /// <summary>Measured time (µs) against tokens, per operator.</summary>
    [JsonPropertyName("token_ops")] public Dictionary<string, MeasuredSeries> TokenOps { get; init; } = new();
    /// <summary>Measured time (µs) against the batch's sequences (LM head, sampler).</summary>
    [JsonPropertyName("sequence_ops")] public Dictionary<string, MeasuredSeries> SequenceOps { get; init; } = new();
    [JsonPropertyName("attention")] public AttentionTable? Attention { get; init; }
    /// <summary>The profile's fitted correction for decode batches of unequal KV lengths (absent: none measured).</summary>
    [JsonPropertyName("attention_skew")] public AttentionSkewFit? AttentionSkew { get; init; }
    [JsonPropertyName("moe")] public MoeTable? Moe { get; init; }
    /// <summary>Per-GPU ring all-reduce after o_proj and down_proj under tensor parallelism: fixed µs and bytes per µs (absent at TP1).</summary>
    [JsonPropertyName("all_reduce")] public AllReduceLink? AllReduce { get; init; }
    /// <summary>Bytes of one token's hidden state (the all-reduced activation).</summary>
    [JsonPropertyName("hidden_bytes_per_token")] public double HiddenBytesPerToken { get; init; }

    /// <summary>The first problem that makes the tables unusable, or null.</summary>
    public string? Problem()
    {
        if (Layers <= 0) return "layers: must be positive";
        foreach (var (name, s) in TokenOps.Concat(SequenceOps))
            if (s.Problem() is { } p) return $"{name}: {p}";
        foreach (var op in PerLayer.Keys.Concat(PerIteration))
            if (!TokenOps.ContainsKey(op)) return $"{op}: listed but has no token_ops series";
        if (Attention is { } a && a.Problem() is { } ap) return $"attention: {ap}";
        if (AttentionSkew is { } k && k.Problem() is { } kp) return $"attention_skew: {kp}";
        if (Moe is { } m && m.Problem() is { } mp) return $"moe: {mp}";
        return null;
    }
}

/// <summary>Measured points of one operator: sizes in increasing order and their times (µs).</summary>
public sealed record MeasuredSeries
{
    [JsonConverter(typeof(CompactArrayConverter<double>))]
    [JsonPropertyName("x")] public double[] X { get; init; } = [];
    [JsonConverter(typeof(CompactArrayConverter<double>))]
    [JsonPropertyName("us")] public double[] Us { get; init; } = [];

    public string? Problem()
    {
        if (X.Length == 0 || X.Length != Us.Length) return "x and us must be non-empty lists of equal length";
        for (int i = 1; i < X.Length; i++) if (!(X[i] > X[i - 1])) return "x must increase";
        return Us.All(double.IsFinite) ? null : "us must be finite";
    }
}

/// <summary>attention.csv as columns: one row per measured (prefill_chunk, kv_prefill, n_decode, kv_decode) point.</summary>
public sealed record AttentionTable
{
    [JsonConverter(typeof(CompactArrayConverter<int>))]
    [JsonPropertyName("prefill_chunk")] public int[] PrefillChunk { get; init; } = [];
    [JsonConverter(typeof(CompactArrayConverter<int>))]
    [JsonPropertyName("kv_prefill")] public int[] KvPrefill { get; init; } = [];
    [JsonConverter(typeof(CompactArrayConverter<int>))]
    [JsonPropertyName("n_decode")] public int[] NDecode { get; init; } = [];
    [JsonConverter(typeof(CompactArrayConverter<int>))]
    [JsonPropertyName("kv_decode")] public int[] KvDecode { get; init; } = [];
    [JsonConverter(typeof(CompactArrayConverter<double>))]
    [JsonPropertyName("us")] public double[] Us { get; init; } = [];

    public string? Problem()
    {
        int n = Us.Length;
        if (n == 0 || PrefillChunk.Length != n || KvPrefill.Length != n || NDecode.Length != n || KvDecode.Length != n)
            return "prefill_chunk, kv_prefill, n_decode, kv_decode and us must be non-empty columns of equal length";
        return Us.All(double.IsFinite) ? null : "us must be finite";
    }
}

/// <summary>
/// LLMServingSim's skew fit for one TP degree (meta.yaml <c>skew_fit</c>: <c>bucket_axes</c> and the TP's
/// <c>alpha_default</c>; <c>tpN/skew_fit.csv</c>: alpha per bucket), fitted by its profiler from <c>skew.csv</c>.
/// A decode batch whose KV lengths differ costs <c>t_mean + alpha (t_max − t_mean)</c>, t_mean and t_max being the
/// attention table at the batch's mean and longest KV, alpha the value of the batch's bucket (prefill chunk; decodes,
/// skew rate (mean − shortest)/(longest − shortest), longest KV and prefill KV, each binned by the axes), or
/// <see cref="AlphaDefault"/> for a bucket the fit has no value for
/// (llmservingsim/serving/core/trace_generator.py at 4a23e9f, <c>_lookup_attention_with_skew</c>, <c>_skew_alpha</c>).
/// </summary>
public sealed record AttentionSkewFit
{
    [JsonPropertyName("alpha_default")] public double AlphaDefault { get; init; }
    /// <summary>Bin edges; a value v takes the first label i with v ≤ bins[i + 1], else the last label.</summary>
    [JsonConverter(typeof(CompactArrayConverter<double>))]
    [JsonPropertyName("n_bins")] public double[] NBins { get; init; } = [];
    [JsonConverter(typeof(CompactArrayConverter<string>))]
    [JsonPropertyName("n_labels")] public string[] NLabels { get; init; } = [];
    [JsonConverter(typeof(CompactArrayConverter<double>))]
    [JsonPropertyName("skew_rate_bins")] public double[] SkewRateBins { get; init; } = [];
    [JsonConverter(typeof(CompactArrayConverter<string>))]
    [JsonPropertyName("skew_rate_labels")] public string[] SkewRateLabels { get; init; } = [];
    [JsonConverter(typeof(CompactArrayConverter<double>))]
    [JsonPropertyName("kv_big_bins")] public double[] KvBigBins { get; init; } = [];
    [JsonConverter(typeof(CompactArrayConverter<string>))]
    [JsonPropertyName("kv_big_labels")] public string[] KvBigLabels { get; init; } = [];
    [JsonConverter(typeof(CompactArrayConverter<double>))]
    [JsonPropertyName("kp_bins")] public double[] KpBins { get; init; } = [];
    [JsonConverter(typeof(CompactArrayConverter<string>))]
    [JsonPropertyName("kp_labels")] public string[] KpLabels { get; init; } = [];
    /// <summary>The buckets as columns: prefill chunk (the raw profiled value) and the four labels, with their alpha.</summary>
    [JsonConverter(typeof(CompactArrayConverter<int>))]
    [JsonPropertyName("pc")] public int[] Pc { get; init; } = [];
    [JsonConverter(typeof(CompactArrayConverter<string>))]
    [JsonPropertyName("n")] public string[] N { get; init; } = [];
    [JsonConverter(typeof(CompactArrayConverter<string>))]
    [JsonPropertyName("skew_rate")] public string[] SkewRate { get; init; } = [];
    [JsonConverter(typeof(CompactArrayConverter<string>))]
    [JsonPropertyName("kv_big")] public string[] KvBig { get; init; } = [];
    [JsonConverter(typeof(CompactArrayConverter<string>))]
    [JsonPropertyName("kp")] public string[] Kp { get; init; } = [];
    [JsonConverter(typeof(CompactArrayConverter<double>))]
    [JsonPropertyName("alpha")] public double[] Alpha { get; init; } = [];

    public string? Problem()
    {
        foreach (var (name, bins, labels) in new[] { ("n", NBins, NLabels), ("skew_rate", SkewRateBins, SkewRateLabels), ("kv_big", KvBigBins, KvBigLabels), ("kp", KpBins, KpLabels) })
        {
            if (labels.Length == 0 || bins.Length != labels.Length + 1) return $"{name}_bins must have one more edge than {name}_labels has labels";
            for (int i = 1; i < bins.Length; i++) if (!(bins[i] > bins[i - 1])) return $"{name}_bins must increase";
        }
        int m = Alpha.Length;
        if (Pc.Length != m || N.Length != m || SkewRate.Length != m || KvBig.Length != m || Kp.Length != m)
            return "pc, n, skew_rate, kv_big, kp and alpha must be columns of equal length";
        return double.IsFinite(AlphaDefault) && Alpha.All(double.IsFinite) ? null : "alpha and alpha_default must be finite";
    }

    /// <summary>The label of <paramref name="value"/> on an axis (trace_generator._bucket_label: right-inclusive bins).</summary>
    public static string Label(double[] bins, string[] labels, double value)
    {
        for (int i = 0; i < labels.Length; i++) if (value <= bins[i + 1]) return labels[i];
        return labels[^1];
    }

    /// <summary>The bucket key as the simulator spells it: <c>pc=…|n label|skew-rate label|longest-KV label|prefill-KV label</c>.</summary>
    public static string Key(int pc, string n, string skewRate, string kvBig, string kp) => $"pc={pc}|{n}|{skewRate}|{kvBig}|{kp}";
}

/// <summary>
/// moe.csv: the whole sparse-MoE block of one layer (µs) against the tokens it receives and the distinct experts
/// they activate, measured on one GPU; the model's expert count and experts per token route a batch onto it.
/// </summary>
public sealed record MoeTable
{
    [JsonPropertyName("experts")] public int Experts { get; init; }
    [JsonPropertyName("experts_per_token")] public int ExpertsPerToken { get; init; }
    [JsonConverter(typeof(CompactArrayConverter<int>))]
    [JsonPropertyName("tokens")] public int[] Tokens { get; init; } = [];
    [JsonConverter(typeof(CompactArrayConverter<int>))]
    [JsonPropertyName("activated_experts")] public int[] ActivatedExperts { get; init; } = [];
    [JsonConverter(typeof(CompactArrayConverter<double>))]
    [JsonPropertyName("us")] public double[] Us { get; init; } = [];

    public string? Problem()
    {
        if (Experts <= 0 || ExpertsPerToken <= 0 || ExpertsPerToken > Experts) return "experts and experts_per_token must be positive, experts_per_token <= experts";
        int n = Us.Length;
        return n == 0 || Tokens.Length != n || ActivatedExperts.Length != n ? "tokens, activated_experts and us must be non-empty columns of equal length" : null;
    }
}

/// <summary>A collective's cost: fixed µs plus bytes at a link speed (bytes per µs).</summary>
public sealed record AllReduceLink
{
    [JsonPropertyName("latency_us")] public double LatencyUs { get; init; }
    [JsonPropertyName("bytes_per_us")] public double BytesPerUs { get; init; }
    [JsonPropertyName("ranks")] public int Ranks { get; init; }
}
