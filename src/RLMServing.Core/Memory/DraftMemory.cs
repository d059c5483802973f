using RLMServing.Catalog;
using RLMServing.Policies;

namespace RLMServing.Memory;

/// <summary>
/// What speculative decoding takes from a replica's KV budget (docs/policies.md, "Speculative decoding"): a fixed
/// part (the draft's weights, sharded over the replica's tensor-parallel GPUs as vLLM does, so the replica holds them
/// once) and a per-token part (the draft's own KV: vLLM allocates draft KV for every token the target caches, so every
/// target block costs its draft block too). <see cref="OverrideBytesPerGpu"/>, when set
/// (<c>speculative.draft_memory_gib</c>), replaces both with a fixed amount per GPU.
/// </summary>
public sealed record DraftMemory(double WeightBytes, long KvBytesPerToken, double? OverrideBytesPerGpu = null)
{
    public static readonly DraftMemory None = new(0, 0);

    /// <summary>Bytes reserved per replica whatever the cache size.</summary>
    public double FixedBytes(int tensorParallel) => OverrideBytesPerGpu is { } perGpu ? perGpu * tensorParallel : WeightBytes;

    /// <summary>Draft KV bytes per token the target caches (0 under an override, which is all-inclusive).</summary>
    public long PerTokenBytes => OverrideBytesPerGpu is null ? KvBytesPerToken : 0;

    public bool IsNone => FixedBytes(1) == 0 && PerTokenBytes == 0;

    /// <summary>
    /// The draft's memory by method. <c>draft</c>: the draft model's weights and KV from its catalog entry.
    /// <c>eagle</c>: the EAGLE head (Li et al., "EAGLE: Speculative Sampling Requires Rethinking Feature Uncertainty",
    /// ICML 2024, arXiv:2401.15077, section 3.2: an FC layer from the concatenated feature and token embedding, 2h → h
    /// with bias, then one decoder layer of the target's shape; embedding and LM head are the target's, shared), so
    /// (params of one target layer + 2h² + h) x bytes per parameter, and one layer of the target's KV per token.
    /// <c>ngram</c>: nothing (a host-side lookup in the tokens already there).
    /// </summary>
    public static DraftMemory For(SpeculativeMethod method, ModelArchitecture target, ModelArchitecture? draft, double? overrideGibPerGpu)
    {
        double? overrideBytes = overrideGibPerGpu * (1L << 30);
        return method switch
        {
            SpeculativeMethod.Draft => new DraftMemory(
                draft?.WeightBytes ?? throw new ArgumentException("method draft needs the draft model's architecture"),
                draft.KvBytesPerToken, overrideBytes),
            SpeculativeMethod.Eagle => new DraftMemory(EagleHeadParams(target) * (double)target.BytesPerParam,
                target.KvBytesPerToken / target.Layers, overrideBytes),
            _ => None,
        };
    }

    /// <summary>One decoder layer of the target's shape plus the FC that fuses feature and embedding (2h x h + h).</summary>
    public static long EagleHeadParams(ModelArchitecture target) =>
        target.ParamsPerLayer + 2L * target.Hidden * target.Hidden + target.Hidden;
}
