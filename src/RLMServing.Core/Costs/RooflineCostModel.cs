using RLMServing.Catalog;

namespace RLMServing.Costs;

/// <summary>
/// Analytic roofline: each part of an iteration takes the longer of its compute time and its memory time, at
/// fractions of the datasheet peaks; tensor parallelism divides both and adds two all-reduces per layer.
/// The formula is written out in docs/cost-model.md.
/// </summary>
public sealed class RooflineCostModel : ICostModel
{
    private readonly ModelArchitecture _m;
    private readonly int _tp;
    private readonly double _flops;       // effective FLOP/s of the replica
    private readonly double _bandwidth;   // effective B/s of the replica
    private readonly double _overheadS;
    private readonly double _layerFlopsPerToken;
    private readonly double _lmHeadFlopsPerToken;
    private readonly double _layerWeightBytes;
    private readonly double _lmHeadWeightBytes;
    private readonly double _expertWeightBytes;   // one expert in every layer
    private readonly double _kvBytesPerToken;
    private readonly double _attnFlopsPerPair;
    private readonly double _allReduceBytesPerToken;
    private readonly double _allReduceLatencyS;
    private readonly double _linkBandwidth;

    public RooflineCostModel(ModelArchitecture model, GpuSpec gpu, int tensorParallel,
        double computeEfficiency, double bandwidthEfficiency, double stepOverheadMs, double allReduceLatencyUs)
    {
        _m = model;
        _tp = tensorParallel;
        PeakFlops = gpu.PeakFlops(model.Dtype) * tensorParallel;
        PeakBandwidth = gpu.MemoryBandwidthBytesPerS * tensorParallel;
        _flops = PeakFlops * computeEfficiency;
        _bandwidth = PeakBandwidth * bandwidthEfficiency;
        _overheadS = stepOverheadMs / 1000.0;
        int bytes = model.BytesPerParam;
        // A token runs through the attention projections and its top-k experts only.
        double linearParamsPerLayer = model.ActiveParamsPerLayer - 2.0 * model.Hidden;
        _layerFlopsPerToken = 2.0 * model.Layers * linearParamsPerLayer;
        _lmHeadFlopsPerToken = 2.0 * model.Vocab * model.Hidden;
        _layerWeightBytes = (double)model.Layers * (model.IsMoe ? model.NonExpertParamsPerLayer : model.ParamsPerLayer) * bytes;
        _expertWeightBytes = (double)model.Layers * model.ParamsPerExpert * bytes;
        _lmHeadWeightBytes = (double)model.Vocab * model.Hidden * bytes;
        _kvBytesPerToken = model.KvBytesPerToken;
        _attnFlopsPerPair = 4.0 * model.Layers * model.Heads * model.HeadDim;
        _allReduceBytesPerToken = 2.0 * model.Layers * model.Hidden * bytes;
        _allReduceLatencyS = 2.0 * model.Layers * allReduceLatencyUs / 1e6;
        _linkBandwidth = gpu.InterconnectBytesPerS;
    }

    public double PeakFlops { get; }
    public double PeakBandwidth { get; }
    public double FixedStepS => _overheadS;

    public IterationCost Iteration(in BatchShape shape)
    {
        // Speculative verification: each decode feeds k + 1 queries, all sampled; the i-th extra query also sees the
        // i draft positions before it. The cached KV is still read once per request.
        int q = 1 + shape.SpeculativeTokens;
        int tokens = 0, sampled = shape.DecodeCount * q;
        double attnPairs = (double)shape.DecodeKvSum * q + (double)shape.DecodeCount * shape.SpeculativeTokens * (shape.SpeculativeTokens + 1) / 2.0;
        double kvRead = shape.DecodeKvSum;
        foreach (var c in shape.Prefills.Span)
        {
            tokens += c.Tokens;
            if (c.SamplesToken) sampled++;
            // Causal attention of a chunk: each new token sees the old context and the new tokens before it.
            attnPairs += (double)c.Tokens * c.ContextTokens + (double)c.Tokens * (c.Tokens + 1) / 2.0;
            kvRead += c.ContextTokens;
        }
        tokens += shape.DecodeCount * q;
        var cost = Price(tokens, sampled, attnPairs, kvRead);
        return shape.ScoringKvTokens == 0 ? cost : Add(cost, Scoring(shape));
    }

    /// <summary>
    /// KV-compression scoring, priced as its own kernel: query-key dot products (2 L H d FLOPs per pair, no PV
    /// product) over the keys it reads (half of each KV entry).
    /// </summary>
    public IterationCost Scoring(in BatchShape shape)
    {
        if (shape.ScoringKvTokens == 0) return new IterationCost(0, 0, 0);
        double flops = shape.ScoringPairs * _attnFlopsPerPair / 2.0;
        double bytes = shape.ScoringKvTokens * _kvBytesPerToken / 2.0;
        return new IterationCost(Math.Max(flops / _flops, bytes / _bandwidth), flops, bytes);
    }

    public static IterationCost Add(in IterationCost a, in IterationCost b) => new(a.TimeS + b.TimeS, a.Flops + b.Flops, a.Bytes + b.Bytes);

    public IterationCost Decode(int decodeCount, long kvSum, KvSpread spread = default) => Price(decodeCount, decodeCount, kvSum, kvSum);

    private IterationCost Price(int tokens, int sampled, double attnPairs, double kvReadTokens)
    {
        if (tokens == 0) return new IterationCost(0, 0, 0);
        double linearFlops = tokens * _layerFlopsPerToken + sampled * _lmHeadFlopsPerToken;
        // A mixture-of-experts step reads only the experts its tokens were routed to (on this expert-parallel rank).
        double linearBytes = _layerWeightBytes + _m.ExpertsTouched(tokens) * _expertWeightBytes + (sampled > 0 ? _lmHeadWeightBytes : 0);
        double attnFlops = attnPairs * _attnFlopsPerPair;
        double attnBytes = (kvReadTokens + tokens) * _kvBytesPerToken; // read the cached context, write the new KV
        double linear = Math.Max(linearFlops / _flops, linearBytes / _bandwidth);
        double attention = Math.Max(attnFlops / _flops, attnBytes / _bandwidth);
        double comm = 0;
        if (_tp > 1)
        {
            // Ring all-reduce moves 2(t-1)/t of the activations per GPU, twice per layer (after attention and MLP).
            double bytesPerGpu = tokens * _allReduceBytesPerToken * 2.0 * (_tp - 1) / _tp;
            comm = bytesPerGpu / _linkBandwidth + _allReduceLatencyS;
        }
        return new IterationCost(linear + attention + comm + _overheadS, linearFlops + attnFlops, linearBytes + attnBytes);
    }
}
