namespace RLMServing.Catalog;

/// <summary>A decoder-only transformer's shape, enough to count its weights, FLOPs and KV-cache bytes.</summary>
public sealed record ModelArchitecture(
    string Name,
    string HfId,
    int Layers,
    int Hidden,
    int Heads,
    int KvHeads,
    int HeadDim,
    int Ffn,
    int Vocab,
    string Dtype,
    bool Reasoning,
    string Mlp,
    bool QkvBias,
    bool TieEmbeddings,
    int MaxContext)
{
    public static int BytesOf(string dtype) => dtype switch
    {
        "fp32" => 4,
        "bf16" or "fp16" => 2,
        "fp8" or "int8" => 1,
        _ => throw new ArgumentException($"unknown dtype '{dtype}' (expected fp32, bf16, fp16, fp8 or int8)"),
    };

    public int BytesPerParam => BytesOf(Dtype);

    public bool GatedMlp => Mlp == "gated";

    /// <summary>Width of the fused QKV projection's output.</summary>
    public long QkvWidth => (long)(Heads + 2 * KvHeads) * HeadDim;

    /// <summary>Mixture of experts: experts in each MoE layer (0: a dense MLP in every layer).</summary>
    public int Experts { get; init; }

    /// <summary>Experts each token is routed to (top-k).</summary>
    public int ExpertsPerToken { get; init; }

    /// <summary>Each expert's intermediate width (Qwen3-MoE's moe_intermediate_size; Mixtral's intermediate_size).</summary>
    public int ExpertFfn { get; init; }

    /// <summary>
    /// Expert-parallel ranks the experts are spread over (data-parallel replicas with expert_parallel): each replica
    /// holds Experts / ExpertShards of them. 1 without expert parallelism.
    /// </summary>
    public int ExpertShards { get; init; } = 1;

    public bool IsMoe => Experts > 0;

    /// <summary>Weights of one expert's MLP, in parameters.</summary>
    public long ParamsPerExpert => (GatedMlp ? 3L : 2L) * Hidden * ExpertFfn;

    /// <summary>Attention projections, router and norms of one layer: every weight except the MLP's experts.</summary>
    public long NonExpertParamsPerLayer
    {
        get
        {
            long qkv = (long)Hidden * QkvWidth + (QkvBias ? QkvWidth : 0);
            long o = (long)Heads * HeadDim * Hidden;
            long mlp = IsMoe ? (long)Hidden * Experts : (GatedMlp ? 3L : 2L) * Hidden * Ffn;
            long norms = 2L * Hidden;
            return qkv + o + mlp + norms;
        }
    }

    /// <summary>Weights of one decoder layer held by one replica (attention + MLP or its share of the experts + norms), in parameters.</summary>
    public long ParamsPerLayer => NonExpertParamsPerLayer + (IsMoe ? (long)Math.Ceiling(Experts / (double)ExpertShards) * ParamsPerExpert : 0);

    /// <summary>Weights one token goes through in a layer: all but the experts it is not routed to.</summary>
    public long ActiveParamsPerLayer => NonExpertParamsPerLayer + (IsMoe ? (long)ExpertsPerToken * ParamsPerExpert : 0);

    /// <summary>
    /// Distinct experts a step of <paramref name="tokens"/> tokens activates on one expert-parallel rank, as
    /// LLMServingSim's default BALANCED gate counts them (serving/core/gate_function.py): load-balanced routing
    /// fills every expert before any is hit twice, so min(tokens × k / ranks, experts / ranks).
    /// </summary>
    public double ExpertsTouched(double tokens) =>
        IsMoe ? Math.Min(Math.Round(tokens * ExpertsPerToken / ExpertShards, MidpointRounding.ToEven), Math.Max(1, Experts / ExpertShards)) : 0;

    /// <summary>Embedding table plus LM head (shared when tied).</summary>
    public long EmbeddingParams => (long)Vocab * Hidden * (TieEmbeddings ? 1 : 2);

    public long ParameterCount => Layers * ParamsPerLayer + EmbeddingParams + Hidden;

    public double WeightBytes => (double)ParameterCount * BytesPerParam;

    /// <summary>K and V for every layer, for one token, in the model's dtype.</summary>
    public long KvBytesPerToken => 2L * Layers * KvHeads * HeadDim * BytesPerParam;

    /// <summary>Matrix-multiply FLOPs per token through all layers and the LM head, excluding attention scores.</summary>
    public double LinearFlopsPerToken => 2.0 * (Layers * (ActiveParamsPerLayer - 2L * Hidden) + (long)Vocab * Hidden);

    /// <summary>Attention-score FLOPs for one query token against <paramref name="contextTokens"/> keys (QK^T and PV, all layers).</summary>
    public double AttentionFlops(double contextTokens) => 4.0 * Layers * Heads * HeadDim * contextTokens;
}
