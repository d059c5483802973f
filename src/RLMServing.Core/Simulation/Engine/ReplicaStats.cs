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
    public QuantileSketch Itl { get; } = new(itlAccuracy);

    /// <summary>The same gaps by the time the token came out, so the steady window's ITL can be read after the run.</summary>
    public TimedQuantileSketch ItlByTime { get; } = new(itlAccuracy);

    public void AddItl(double timeS, double gapMs, double weight = 1)
    {
        Itl.Add(gapMs, weight);
        ItlByTime.Add(timeS, gapMs, weight);
    }
}

/// <summary>Closed-loop clients: a finished request lets its client send the next one after a think time.</summary>
internal interface IClientLoop
{
    void OnDone(SimRequest done, double timeS, ReplicaEngine replica);
}
