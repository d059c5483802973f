namespace RLMServing.Costs;

/// <summary>
/// Host work the engine does once per iteration outside its measured steps — the scheduler's decisions, token and
/// request bookkeeping, the engine's own reads — added to every iteration that runs anything
/// (<c>cost_model.host_overhead_us</c>, or a calibration's measured <c>host_overhead</c>). A profile times the
/// engine's steps; a serving engine also spends this between them, and a simulator that leaves it out is that much
/// optimistic before any queueing (docs/fidelity.md). Applied outermost, so a speculative iteration (k drafts and a
/// verification) pays it once, like the scheduler turn it is. With <paramref name="overlapped"/> (an engine that
/// schedules asynchronously, as vLLM V1's async scheduling does) the host prepares the next step while the GPU runs
/// this one, so an iteration takes the longer of the two instead of their sum.
/// </summary>
public sealed class HostOverheadCostModel(ICostModel inner, double overheadS, bool overlapped = false) : ICostModel
{
    public double OverheadS { get; } = overheadS >= 0 ? overheadS : throw new ArgumentOutOfRangeException(nameof(overheadS));
    public bool Overlapped => overlapped;
    public double PeakFlops => inner.PeakFlops;
    public double PeakBandwidth => inner.PeakBandwidth;
    public double FixedStepS => inner.FixedStepS;

    public IterationCost Iteration(in BatchShape shape)
    {
        var c = inner.Iteration(shape);
        return c.TimeS > 0 ? c with { TimeS = WithHost(c.TimeS) } : c;
    }

    public bool UsesKvSpread => inner.UsesKvSpread;

    public IterationCost Decode(int decodeCount, long kvSum, KvSpread spread = default)
    {
        var c = inner.Decode(decodeCount, kvSum, spread);
        return decodeCount > 0 ? c with { TimeS = WithHost(c.TimeS) } : c;
    }

    private double WithHost(double gpuS) => overlapped ? Math.Max(gpuS, OverheadS) : gpuS + OverheadS;
}
