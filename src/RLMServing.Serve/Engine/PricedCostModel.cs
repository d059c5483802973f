using RLMServing.Costs;

namespace RLMServing.Serve.Engine;

/// <summary>
/// The scenario's cost model, remembering the last price it gave: the replica engine prices every iteration right
/// before it hands it to its executor, so the twin's executor runs each iteration for exactly the simulator's price.
/// </summary>
internal sealed class PricedCostModel(ICostModel inner) : ICostModel
{
    /// <summary>The price of the iteration the engine is about to execute.</summary>
    public IterationCost Last { get; private set; }

    public IterationCost Iteration(in BatchShape shape) => Last = inner.Iteration(shape);

    public IterationCost Decode(int decodeCount, long kvSum, KvSpread spread = default) => Last = inner.Decode(decodeCount, kvSum, spread);

    public bool UsesKvSpread => inner.UsesKvSpread;

    public double PeakFlops => inner.PeakFlops;

    public double PeakBandwidth => inner.PeakBandwidth;

    public double FixedStepS => inner.FixedStepS;
}
