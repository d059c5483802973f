namespace RLMServing.Costs;

/// <summary>One prefill chunk in an iteration: its new tokens and the tokens already in its KV cache before it.</summary>
public readonly record struct PrefillChunk(int Tokens, long ContextTokens, bool SamplesToken);

/// <summary>
/// The longest and shortest KV length among a decode batch's requests (each including the new token, as the KV sum
/// counts it). Attention kernels pay for unequal lengths beyond what the sum says (one long sequence keeps a block
/// busy while the others idle), so a cost model measured on skewed batches needs them; default: not known.
/// </summary>
public readonly record struct KvSpread(long Longest, long Shortest)
{
    public bool Known => Longest > 0;
}

/// <summary>
/// What one iteration of a replica computes. Decode requests are summarised by their count and the *sum* of the
/// KV lengths they attend to (including the new token), never by a mean: skew matters for attention cost. The
/// longest and shortest of them (<see cref="DecodeKvSpread"/>) are carried for the models that price skew.
/// </summary>
public readonly record struct BatchShape(ReadOnlyMemory<PrefillChunk> Prefills, int DecodeCount, long DecodeKvSum)
{
    public static BatchShape DecodeOnly(int count, long kvSum, KvSpread spread = default) =>
        new(ReadOnlyMemory<PrefillChunk>.Empty, count, kvSum) { DecodeKvSpread = spread };

    /// <summary>Longest and shortest decode KV length; default when the engine does not track them (<see cref="ICostModel.UsesKvSpread"/>).</summary>
    public KvSpread DecodeKvSpread { get; init; }

    /// <summary>Speculative verification: extra query tokens per decode request (k draft tokens checked with the step's own).</summary>
    public int SpeculativeTokens { get; init; }

    /// <summary>KV compression scoring in this iteration: query-key pairs scored, and the KV entries read to score them.</summary>
    public long ScoringPairs { get; init; }
    public long ScoringKvTokens { get; init; }

    public int PrefillTokens
    {
        get { int t = 0; foreach (var c in Prefills.Span) t += c.Tokens; return t; }
    }

    public int TotalTokens => PrefillTokens + DecodeCount * (1 + SpeculativeTokens);
}

/// <summary>Duration of an iteration and the work it did (for utilisation estimates).</summary>
public readonly record struct IterationCost(double TimeS, double Flops, double Bytes);

/// <summary>Prices one iteration of one replica. Implementations: roofline (analytic), calibrated (fitted to traces).</summary>
public interface ICostModel
{
    IterationCost Iteration(in BatchShape shape);

    /// <summary>Fast path for a decode-only iteration; must equal <see cref="Iteration"/> on the same shape.</summary>
    IterationCost Decode(int decodeCount, long kvSum, KvSpread spread = default);

    /// <summary>
    /// Whether the price depends on the decode batch's longest and shortest KV (<see cref="KvSpread"/>); the engine
    /// tracks them only then. Wrappers pass their inner model's answer on.
    /// </summary>
    bool UsesKvSpread => false;

    /// <summary>Peak compute in FLOP/s and memory bandwidth in B/s of the replica, for utilisation figures.</summary>
    double PeakFlops { get; }
    double PeakBandwidth { get; }

    /// <summary>
    /// The fixed per-iteration (per-call) term, s: kernel launches and host scheduling that every forward pass pays
    /// whatever its batch (the roofline's step overhead, a calibration's intercept). Speculative decoding charges it
    /// to each draft step.
    /// </summary>
    double FixedStepS { get; }
}
