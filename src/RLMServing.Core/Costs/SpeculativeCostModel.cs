using RLMServing.Policies;

namespace RLMServing.Costs;

/// <summary>
/// Prices iterations under speculative decoding: the target verifies k + 1 positions per decoding request in one
/// pass (<see cref="BatchShape.SpeculativeTokens"/>), after k draft steps — the draft model's own decode (method
/// draft, from the catalog through the same cost model, which also prefills the prompts), a fraction of the target's
/// decode (eagle heads), or nothing (ngram lookup). Verification grows with the batch while the weight read it
/// shares does not, which is why the gain shrinks as batches grow.
/// </summary>
public sealed class SpeculativeCostModel(ICostModel target, ICostModel? draft, SpeculativeConfig config) : ICostModel
{
    public double PeakFlops => target.PeakFlops;
    public double PeakBandwidth => target.PeakBandwidth;

    public IterationCost Iteration(in BatchShape shape)
    {
        var main = shape.DecodeCount == 0 ? target.Iteration(shape) : target.Iteration(shape with { SpeculativeTokens = config.NumSpeculativeTokens });
        return RooflineCostModel.Add(main, DraftCost(shape));
    }

    public IterationCost Decode(int decodeCount, long kvSum) => Iteration(BatchShape.DecodeOnly(decodeCount, kvSum));

    /// <summary>The draft's share: its prefill of this iteration's prompt chunks (draft model only) and k decode steps.</summary>
    private IterationCost DraftCost(in BatchShape shape)
    {
        var none = new IterationCost(0, 0, 0);
        if (shape.DecodeCount == 0 && (draft is null || shape.Prefills.IsEmpty)) return none;
        int k = config.NumSpeculativeTokens;
        switch (config.Method)
        {
            case SpeculativeMethod.Draft:
                var prefill = shape.Prefills.IsEmpty ? none : draft!.Iteration(new BatchShape(shape.Prefills, 0, 0));
                var decode = shape.DecodeCount == 0 ? none : Scale(draft!.Decode(shape.DecodeCount, shape.DecodeKvSum), k);
                return RooflineCostModel.Add(prefill, decode);
            case SpeculativeMethod.Eagle:
                return shape.DecodeCount == 0 ? none : Scale(target.Decode(shape.DecodeCount, shape.DecodeKvSum), k * config.DraftCostFraction);
            default:
                return none;
        }
    }

    private static IterationCost Scale(in IterationCost c, double f) => new(c.TimeS * f, c.Flops * f, c.Bytes * f);
}
