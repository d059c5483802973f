using RLMServing.Policies;

namespace RLMServing.Costs;

/// <summary>
/// Prices iterations under speculative decoding: the target verifies k + 1 positions per decoding request in one
/// pass (<see cref="BatchShape.SpeculativeTokens"/>), after k draft steps — the draft model's own decode (method
/// draft, from the catalog through the same cost model, which also prefills the prompts), a fraction of the target's
/// decode (eagle heads), or one host-side n-gram lookup for all k. Every draft step pays a fixed overhead (kernel
/// launches, host work): by default the fixed per-iteration term of the cost model that prices it, which a batch-1
/// draft step cannot amortise. Verification grows with the batch while the weight read it shares does not, which is
/// why the gain shrinks as batches grow.
/// </summary>
public sealed class SpeculativeCostModel(ICostModel target, ICostModel? draft, SpeculativeConfig config) : ICostModel
{
    public double PeakFlops => target.PeakFlops;
    public double PeakBandwidth => target.PeakBandwidth;
    public double FixedStepS => target.FixedStepS;

    public IterationCost Iteration(in BatchShape shape)
    {
        var main = shape.DecodeCount == 0 ? target.Iteration(shape) : target.Iteration(shape with { SpeculativeTokens = config.NumSpeculativeTokens });
        return RooflineCostModel.Add(main, DraftCost(shape));
    }

    public IterationCost Decode(int decodeCount, long kvSum, KvSpread spread = default) => Iteration(BatchShape.DecodeOnly(decodeCount, kvSum, spread));

    public bool UsesKvSpread => target.UsesKvSpread;

    /// <summary>Fixed cost of one draft step, s: the override, else the pricing model's own fixed term (ngram: the lookup constant).</summary>
    public double DraftStepOverheadS => (config.DraftStepOverheadMs ?? config.Method switch
    {
        SpeculativeMethod.Draft => draft!.FixedStepS * 1000,
        SpeculativeMethod.Eagle => target.FixedStepS * 1000,
        _ => SpeculativeConfig.NgramLookupMs,
    }) / 1000;

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
                var decode = shape.DecodeCount == 0 ? none : Scale(Step(draft!.Decode(shape.DecodeCount, shape.DecodeKvSum, shape.DecodeKvSpread), draft.FixedStepS, 1), k);
                return RooflineCostModel.Add(prefill, decode);
            case SpeculativeMethod.Eagle:
                return shape.DecodeCount == 0 ? none
                    : Scale(Step(target.Decode(shape.DecodeCount, shape.DecodeKvSum, shape.DecodeKvSpread), target.FixedStepS, config.DraftCostFraction), k);
            default:
                return shape.DecodeCount == 0 ? none : new IterationCost(DraftStepOverheadS, 0, 0);
        }
    }

    /// <summary>One draft step: <paramref name="fraction"/> of a forward pass's variable part, plus the whole step overhead.</summary>
    private IterationCost Step(in IterationCost pass, double passFixedS, double fraction) =>
        new(fraction * Math.Max(0, pass.TimeS - passFixedS) + DraftStepOverheadS, pass.Flops * fraction, pass.Bytes * fraction);

    private static IterationCost Scale(in IterationCost c, double f) => new(c.TimeS * f, c.Flops * f, c.Bytes * f);
}
