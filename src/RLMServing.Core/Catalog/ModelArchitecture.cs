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

    /// <summary>Weights of one decoder layer (attention + MLP + norms), in parameters.</summary>
    public long ParamsPerLayer
    {
        get
        {
            long qkv = (long)Hidden * QkvWidth + (QkvBias ? QkvWidth : 0);
            long o = (long)Heads * HeadDim * Hidden;
            long mlp = (GatedMlp ? 3L : 2L) * Hidden * Ffn;
            long norms = 2L * Hidden;
            return qkv + o + mlp + norms;
        }
    }

    /// <summary>Embedding table plus LM head (shared when tied).</summary>
    public long EmbeddingParams => (long)Vocab * Hidden * (TieEmbeddings ? 1 : 2);

    public long ParameterCount => Layers * ParamsPerLayer + EmbeddingParams + Hidden;

    public double WeightBytes => (double)ParameterCount * BytesPerParam;

    /// <summary>K and V for every layer, for one token, in the model's dtype.</summary>
    public long KvBytesPerToken => 2L * Layers * KvHeads * HeadDim * BytesPerParam;

    /// <summary>Matrix-multiply FLOPs per token through all layers and the LM head, excluding attention scores.</summary>
    public double LinearFlopsPerToken => 2.0 * (Layers * (ParamsPerLayer - 2L * Hidden) + (long)Vocab * Hidden);

    /// <summary>Attention-score FLOPs for one query token against <paramref name="contextTokens"/> keys (QK^T and PV, all layers).</summary>
    public double AttentionFlops(double contextTokens) => 4.0 * Layers * Heads * HeadDim * contextTokens;
}
