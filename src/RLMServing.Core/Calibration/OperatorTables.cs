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
