using RLMServing.Catalog;
using RLMServing.Costs;
using RLMServing.Memory;
using RLMServing.Metrics;
using RLMServing.Scenarios;
using RLMServing.Workloads;

namespace RLMServing.Simulation;

/// <summary>Everything one simulated run produces.</summary>
public sealed record SimulationResult(
    RunSummary Summary,
    IReadOnlyList<RequestRecord> Requests,
    IReadOnlyList<TimeseriesPoint> Timeseries,
    KvCachePlan KvPlan);

/// <summary>
/// The discrete-event simulator of a serving cluster. Pure: it takes a bound scenario, the catalog entries and a
/// cost model, and returns results; it does no I/O. The router assigns each request to a replica when it arrives;
/// round robin and seeded random routing do not depend on replica state, so each replica's event loop runs on
/// its own and the cluster result is their union (which is also what makes it fast).
/// </summary>
public static class Simulator
{
    /// <param name="executor">
    /// A real engine that executes the iterations instead of pricing them (rlms replay): one replica, stepped one
    /// iteration per scheduler turn (fast-forward off), on the executor's wall clock. Null: simulate.
    /// </param>
    public static SimulationResult Run(Scenario scenario, ModelArchitecture model, GpuSpec gpu, ICostModel cost,
        IProgress<double>? progress = null, bool checkInvariants = false, IIterationExecutor? executor = null)
    {
        var hw = scenario.Hardware;
        if (executor is not null && hw.Replicas != 1)
            throw new ArgumentException("a real executor serves one replica");
        var plan = KvCachePlan.For(model, gpu, hw.TensorParallel, scenario.KvCache, scenario.Scheduler);
        var requests = scenario.ReplayRequests ?? scenario.Workload!.Generate(scenario.Seed);
        int replicas = hw.Replicas;
        var stats = new ReplicaStats[replicas];
        var engines = new ReplicaEngine[replicas];
        var records = new List<RequestRecord>(requests.Count);
        var timeseries = new List<TimeseriesPoint>();
        long doneCount = 0, total = requests.Count;
        long reportEvery = Math.Max(1, total / 200);
        Action onDone = () =>
        {
            if (++doneCount % reportEvery == 0) progress?.Report((double)doneCount / total);
        };

        var closedLoop = scenario.Workload?.Arrival as ClosedLoopArrivals;
        for (int i = 0; i < replicas; i++)
        {
            stats[i] = new ReplicaStats(0.005);
            IClientLoop? clients = closedLoop is null ? null : new ClientLoop(closedLoop.ThinkTimeMs / 1000.0);
            engines[i] = new ReplicaEngine(i, scenario.Scheduler, cost, plan, scenario.Simulation.FastForward && executor is null,
                scenario.Metrics.TimeseriesIntervalS, clients, stats[i], records, timeseries, executor)
            {
                OnRequestDone = onDone,
                CheckInvariants = checkInvariants,
                Policies = scenario.PoliciesOrNone,
                PolicySeed = scenario.Seed,
            };
        }

        if (closedLoop is null) RouteOpenLoop(scenario, requests, engines);
        else SeedClosedLoop(closedLoop, requests, engines);

        foreach (var e in engines) e.Run();
        progress?.Report(1.0);

        records.Sort((a, b) => a.RequestId.CompareTo(b.RequestId));
        timeseries.Sort((a, b) => a.TimeS != b.TimeS ? a.TimeS.CompareTo(b.TimeS) : a.Replica.CompareTo(b.Replica));
        var itl = new QuantileSketch(0.005);
        foreach (var s in stats) itl.Merge(s.Itl);
        var totals = stats.Select(s => new ReplicaTotals(s.BusyS, s.Flops, s.Bytes, s.Iterations, s.BatchRequestsSum,
            s.KvBlockSeconds, s.PeakBlocks, plan.TotalBlocks, s.Preemptions, cost.PeakFlops, cost.PeakBandwidth)).ToList();
        var identity = new RunSummary
        {
            Scenario = scenario.Name,
            Model = model.Name,
            Gpu = gpu.Name,
            Replicas = replicas,
            TensorParallel = hw.TensorParallel,
            Batching = scenario.Scheduler.Batching.ToString(),
            Seed = scenario.Seed,
            KvCacheCapacityTokens = plan.CapacityTokens,
        };
        var summary = SummaryBuilder.Build(identity, records, itl, totals, scenario.Slo, scenario.Scheduler.MaxNumSeqs);
        summary = PolicySummary.Add(summary, scenario.PoliciesOrNone, plan, stats, engines.Select(e => e.PolicyTotals).ToList());
        return new SimulationResult(summary, records, timeseries, plan);
    }

    private static void RouteOpenLoop(Scenario scenario, IReadOnlyList<RequestSpec> requests, ReplicaEngine[] engines)
    {
        var ordered = requests.OrderBy(r => r.ArrivalTimeS).ThenBy(r => r.Id);
        var rng = new Random(SyntheticWorkload.Mix(scenario.Seed, 17));
        int next = 0;
        foreach (var spec in ordered)
        {
            int target = scenario.Scheduler.Router == RouterKind.Random ? rng.Next(engines.Length) : next++ % engines.Length;
            engines[target].AddArrival(new SimRequest(spec, spec.ArrivalTimeS));
        }
    }

    /// <summary>Client i is pinned to replica i mod R; a replica's clients draw the next request from its share of the workload.</summary>
    private static void SeedClosedLoop(ClosedLoopArrivals loop, IReadOnlyList<RequestSpec> requests, ReplicaEngine[] engines)
    {
        // Only replicas with at least one client can drain a share of the workload.
        int serving = Math.Min(engines.Length, loop.Concurrency);
        for (int k = 0; k < requests.Count; k++)
            ((ClientLoop)engines[k % serving].Clients!).Pool.Enqueue(requests[k]);
        for (int c = 0; c < loop.Concurrency; c++)
        {
            var engine = engines[c % engines.Length];
            var pool = ((ClientLoop)engine.Clients!).Pool;
            if (pool.Count == 0) continue;
            var spec = pool.Dequeue();
            engine.AddArrival(new SimRequest(spec with { ArrivalTimeS = 0 }, 0) { ClientId = c });
        }
    }

    private sealed class ClientLoop(double thinkTimeS) : IClientLoop
    {
        public Queue<RequestSpec> Pool { get; } = new();

        public void OnDone(SimRequest done, double timeS, ReplicaEngine replica)
        {
            if (Pool.Count == 0) return;
            double at = timeS + thinkTimeS;
            var spec = Pool.Dequeue() with { ArrivalTimeS = at };
            replica.AddArrival(new SimRequest(spec, at) { ClientId = done.ClientId });
        }
    }
}
