using MathNet.Numerics.Distributions;

namespace RLMServing.Workloads;

/// <summary>How requests arrive: an open-loop process of inter-arrival gaps, or a closed loop of clients.</summary>
public abstract record ArrivalProcess
{
    /// <summary>Gap to the next arrival in seconds (open-loop processes only).</summary>
    public abstract double NextGapS(Random rng);

    /// <summary>Closed processes send on completions, so the simulator assigns arrival times, not the workload.</summary>
    public virtual bool IsClosed => false;
}

public sealed record PoissonArrivals(double RatePerS) : ArrivalProcess
{
    public override double NextGapS(Random rng) => Exponential.Sample(rng, RatePerS);
}

/// <summary>
/// Gamma-distributed gaps with vLLM's benchmark semantics: shape = burstiness, scale = 1 / (rate x burstiness),
/// so the mean rate is kept and burstiness 1 is Poisson; lower is burstier.
/// </summary>
public sealed record GammaArrivals(double RatePerS, double Burstiness) : ArrivalProcess
{
    public override double NextGapS(Random rng) => Gamma.Sample(rng, Burstiness, RatePerS * Burstiness);
}

public sealed record ConstantArrivals(double RatePerS) : ArrivalProcess
{
    public override double NextGapS(Random rng) => 1.0 / RatePerS;
}

/// <summary>
/// A fixed number of clients, each sending its next request a think time after its previous one completes.
/// Clients are pinned to replicas round robin (client i to replica i mod R), as a sticky load balancer would do.
/// </summary>
public sealed record ClosedLoopArrivals(int Concurrency, double ThinkTimeMs) : ArrivalProcess
{
    public override double NextGapS(Random rng) =>
        throw new InvalidOperationException("closed-loop arrivals are driven by completions, not by gaps");

    public override bool IsClosed => true;
}

/// <summary>
/// A client that sends <see cref="Batch"/> requests at once, waits until the last of them has finished (completed or
/// rejected), and sends the next batch <see cref="GapMs"/> later, as a benchmark script looping over a dataset in
/// batches does (<c>rlms bench --closed-batches N</c>). The batch goes to the whole cluster, so its boundary is
/// global: the next batch waits for the slowest replica. Requests are taken in id order, the last batch may be short.
/// </summary>
public sealed record ClosedBatchArrivals(int Batch, double GapMs = 0) : ArrivalProcess
{
    public override double NextGapS(Random rng) =>
        throw new InvalidOperationException("closed-batch arrivals are driven by completions, not by gaps");

    public override bool IsClosed => true;
}
