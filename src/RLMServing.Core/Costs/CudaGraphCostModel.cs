namespace RLMServing.Costs;

/// <summary>
/// CUDA-graph execution as vLLM V1 runs it (cudagraph_mode FULL_AND_PIECEWISE; vllm/v1/cudagraph_dispatcher.py,
/// vllm/config/compilation.py, 0.11-0.19): a batch of at most the largest capture size in tokens replays the graph
/// captured for the next capture size at or above its token count — a full graph for decode-only batches, piecewise
/// graphs for batches with a prefill — so it runs that many tokens. The padding tokens run the dense layers; their
/// attention reads no KV, so they are priced as decodes with no KV (the KV sum is unchanged). Larger batches run
/// eagerly, unpadded. The sizes come from the scenario's engine (<see cref="Scenarios.EngineConfig"/>).
/// </summary>
public sealed class CudaGraphCostModel : ICostModel
{
    private readonly ICostModel _inner;
    private readonly int[] _padTo;   // batch size -> captured size, for 1..largest

    public CudaGraphCostModel(ICostModel inner, IReadOnlyList<int> captureSizes)
    {
        if (captureSizes.Count == 0 || captureSizes.Any(s => s <= 0)) throw new ArgumentException("capture sizes must be positive", nameof(captureSizes));
        _inner = inner;
        var sorted = captureSizes.Distinct().Order().ToArray();
        _padTo = new int[sorted[^1] + 1];
        for (int b = 1, i = 0; b < _padTo.Length; b++)
        {
            while (sorted[i] < b) i++;
            _padTo[b] = sorted[i];
        }
    }

    /// <summary>The tokens a batch of <paramref name="tokens"/> runs as: the next capture size, or itself past the largest.</summary>
    public int PaddedTokens(int tokens) => tokens > 0 && tokens < _padTo.Length ? _padTo[tokens] : tokens;

    public double PeakFlops => _inner.PeakFlops;
    public double PeakBandwidth => _inner.PeakBandwidth;
    public double FixedStepS => _inner.FixedStepS;

    public IterationCost Iteration(in BatchShape shape)
    {
        int tokens = shape.TotalTokens;
        int padding = PaddedTokens(tokens) - tokens;
        // Speculative verification batches are the speculative cost model's to shape; they run as they are here.
        if (padding == 0 || shape.SpeculativeTokens != 0) return _inner.Iteration(shape);
        return _inner.Iteration(shape with { DecodeCount = shape.DecodeCount + padding });
    }

    // The padding reads no KV: the real requests' longest and shortest KV stay what they are.
    public IterationCost Decode(int decodeCount, long kvSum, KvSpread spread = default) => _inner.Decode(PaddedTokens(decodeCount), kvSum, spread);

    public bool UsesKvSpread => _inner.UsesKvSpread;
}
