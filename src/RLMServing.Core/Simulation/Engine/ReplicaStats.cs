using RLMServing.Metrics;

namespace RLMServing.Simulation;

/// <summary>Totals a replica accumulates over a run; memory is constant in the number of tokens.</summary>
internal sealed class ReplicaStats(double itlAccuracy)
{
    public double BusyS;
    public double Flops;
    public double Bytes;
    public long Iterations;
    public long BatchRequestsSum;
    public double KvBlockSeconds;
    public long PeakBlocks;
    public long Preemptions;
    public long SwapOuts;
    public long SwapIns;
    public long SwapFallbacks;
    public double SwapTransferS;
    public double EndS;
    /// <summary>The inter-token gaps by the time the token came out, so the steady window's ITL can be read after the run.</summary>
    public TimedQuantileSketch ItlByTime { get; } = new(itlAccuracy);

    /// <summary>
    /// Every gap of the run: its time buckets merged when read. The decode loop adds each gap once, to its time
    /// bucket, rather than to a whole-run sketch as well.
    /// </summary>
    public QuantileSketch Itl => ItlByTime.All();

    public void AddItl(double timeS, double gapMs, double weight = 1) => ItlByTime.Add(timeS, gapMs, weight);
}

/// <summary>Closed-loop clients: a finished request lets its client send the next one after a think time.</summary>
internal interface IClientLoop
{
    void OnDone(SimRequest done, double timeS, ReplicaEngine replica);
}
