using RLMServing.Catalog;
using RLMServing.Costs;
using RLMServing.Memory;
using RLMServing.Metrics;
using RLMServing.Routing;
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
/// cost model (one per replica group), and returns results; it does no I/O. The router assigns each request to a
/// replica when it arrives. Round robin and seeded random routing do not depend on replica state, so each replica's
/// event loop runs on its own and the cluster result is their union (which is also what makes it fast); routers
/// that read replica state run the replicas in lockstep to each arrival (<see cref="ClusterDriver"/>).
/// </summary>
public static class Simulator
{
    /// <param name="executor">
    /// A real engine that executes the iterations instead of pricing them (rlms replay): one replica, stepped one
    /// iteration per scheduler turn (fast-forward off), on the executor's wall clock. Null: simulate.
    /// </param>
    public static SimulationResult Run(Scenario scenario, ModelArchitecture model, GpuSpec gpu, ICostModel cost,
        IProgress<double>? progress = null, bool checkInvariants = false, IIterationExecutor? executor = null) =>
        Run(scenario, model, [ReplicaGroup.Single(scenario, gpu, cost)], progress, checkInvariants, executor: executor);

    /// <summary>
    /// Runs a cluster of replica groups. <paramref name="lockstep"/> forces the lockstep driver even for routers
    /// that ignore replica state (a test uses it to show both drivers agree).
    /// </summary>
    public static SimulationResult Run(Scenario scenario, ModelArchitecture model, IReadOnlyList<ReplicaGroup> groups,
        IProgress<double>? progress = null, bool checkInvariants = false, bool lockstep = false, IIterationExecutor? executor = null)
    {
        var requests = scenario.Requests();
        var draftMemory = scenario.PoliciesOrNone.Speculative?.Memory;
        var plans = groups.Select(g => KvCachePlan.For(model, g.Gpu, g.TensorParallel, scenario.KvCache, g.Scheduler, draftMemory)).ToList();
        int replicas = groups.Sum(g => g.Replicas);
        if (executor is not null && replicas != 1)
            throw new ArgumentException("a real executor serves one replica");
        var stats = new ReplicaStats[replicas];
        var engines = new ReplicaEngine[replicas];
        var groupOf = new int[replicas];
        var records = new List<RequestRecord>(requests.Count);
        var timeseries = new List<TimeseriesPoint>();
        long doneCount = 0, total = requests.Count;
        long reportEvery = Math.Max(1, total / 200);
        Action onDone = () =>
        {
            if (++doneCount % reportEvery == 0) progress?.Report((double)doneCount / total);
        };

        var closedLoop = scenario.Workload?.Arrival as ClosedLoopArrivals;
        var closedBatches = scenario.ClosedBatches;
        bool sampled = ParallelSampling.Sampled(requests);
        for (int g = 0, i = 0; g < groups.Count; g++)
        {
            for (int k = 0; k < groups[g].Replicas; k++, i++)
            {
                stats[i] = new ReplicaStats(0.005);
                groupOf[i] = g;
                IClientLoop? clients = closedLoop is null ? null : new ClientLoop(closedLoop.ThinkTimeMs / 1000.0);
                engines[i] = new ReplicaEngine(i, groups[g].Scheduler, groups[g].Cost, plans[g], scenario.Simulation.FastForward && executor is null,
                    scenario.Metrics.TimeseriesIntervalS, clients, stats[i], records, timeseries, executor)
                {
                    OnRequestDone = onDone,
                    CheckInvariants = checkInvariants,
                    Policies = scenario.PoliciesOrNone,
                    PolicySeed = scenario.Seed,
                    Slowdown = scenario.CostModel.Slowdown,
                };
                engines[i].ConfigureMemory(scenario.KvCache.Memory, groups[g].TensorParallel, sampled);
            }
        }

        var router = Routers.Create(scenario.Scheduler.Router, SyntheticWorkload.Mix(scenario.Seed, 17), scenario.Cluster?.BalanceThreshold ?? 32);
        var transfers = new ClusterDriver.KvTransferStats();
        if (groups.Any(g => g.Role != ReplicaRole.Both))
        {
            if (closedLoop is not null || closedBatches is not null) throw new InvalidOperationException("closed-loop clients cannot drive a disaggregated cluster");
            var decodeRouter = Routers.Create(scenario.Scheduler.Router, SyntheticWorkload.Mix(scenario.Seed, 18), scenario.Cluster?.BalanceThreshold ?? 32);
            var link = scenario.Cluster?.KvTransfer ?? throw new InvalidOperationException("a disaggregated cluster needs cluster.kv_transfer");
            transfers = ClusterDriver.RunDisaggregated(requests, engines.Where((_, i) => groups[groupOf[i]].Role == ReplicaRole.Prefill).ToArray(),
                engines.Where((_, i) => groups[groupOf[i]].Role == ReplicaRole.Decode).ToArray(), router, decodeRouter, link, plans[0].KvBytesPerToken);
        }
        else if (closedLoop is not null)
        {
            if (sampled) throw new InvalidOperationException("closed-loop clients cannot send parallel samples");
            SeedClosedLoop(closedLoop, requests, engines);
            foreach (var e in engines) e.Run();
        }
        else if (closedBatches is not null)
        {
            if (sampled) throw new InvalidOperationException("closed batches cannot send parallel samples");
            ClusterDriver.RunClosedBatches(requests, engines, router, closedBatches);
        }
        else if (router.StateDependent || lockstep) ClusterDriver.RunLockstep(requests, engines, router);
        else
        {
            RouteOpenLoop(requests, engines, router);
            foreach (var e in engines) e.Run();
        }
        progress?.Report(1.0);

        SortById(records);
        timeseries.Sort((a, b) => a.TimeS != b.TimeS ? a.TimeS.CompareTo(b.TimeS) : a.Replica.CompareTo(b.Replica));
        var itlByTime = new TimedQuantileSketch(0.005);
        foreach (var s in stats) itlByTime.Merge(s.ItlByTime);
        var itl = itlByTime.All();
        var totals = stats.Select((s, i) => new ReplicaTotals(s.BusyS, s.Flops, s.Bytes, s.Iterations, s.BatchRequestsSum,
            s.KvBlockSeconds, s.PeakBlocks, plans[groupOf[i]].TotalBlocks, s.Preemptions, groups[groupOf[i]].Cost.PeakFlops,
            groups[groupOf[i]].Cost.PeakBandwidth)).ToList();
        var first = groups[0];
        var identity = new RunSummary
        {
            Scenario = scenario.Name,
            Model = model.Name,
            Gpu = string.Join(" + ", groups.Select(g => g.Gpu.Name).Distinct()),
            Replicas = replicas,
            TensorParallel = first.TensorParallel,
            Batching = first.Scheduler.Batching.ToString(),
            Seed = scenario.Seed,
            KvCacheCapacityTokens = plans.Min(p => p.CapacityTokens),
            ItlByTime = itlByTime,
        };
        var summary = SummaryBuilder.Build(identity, records, itl, totals, scenario.Slo, first.Scheduler.MaxNumSeqs);
        summary = PolicySummary.Add(summary, scenario.PoliciesOrNone, plans, stats, engines.Select(e => e.PolicyTotals).ToList());
        summary = ClusterDriver.AddMemoryPolicyMetrics(summary, scenario, engines, stats, records, sampled) with
        {
            KvTransfers = transfers.Count,
            MeanKvTransferMs = transfers.Count == 0 ? 0 : transfers.TotalS * 1000 / transfers.Count,
        };
        return new SimulationResult(summary, records, timeseries, plans[0]);
    }

    /// <summary>
    /// Rows in request-id order. Sorted through an array of the ids, so a comparison reads two longs instead of two
    /// rows scattered over the heap. Ids are unique, so the order is the one a comparison sort gives; should two
    /// rows share an id, the rows are sorted by the comparison itself, as before, so ties stay where they were.
    /// </summary>
    internal static void SortById(List<RequestRecord> records)
    {
        var rows = System.Runtime.InteropServices.CollectionsMarshal.AsSpan(records);
        if (PlaceById(rows)) return;
        var original = rows.ToArray();
        var ids = new long[rows.Length];
        for (int i = 0; i < rows.Length; i++) ids[i] = rows[i].RequestId;
        ids.AsSpan().Sort(rows);
        for (int i = 1; i < ids.Length; i++)
        {
            if (ids[i] != ids[i - 1]) continue;
            original.CopyTo(rows);
            records.Sort((a, b) => a.RequestId.CompareTo(b.RequestId));
            return;
        }
    }

    /// <summary>
    /// The simulator numbers a run's requests 0..n-1 (or any n consecutive ids): then each row's place is its id less the
    /// smallest, and the rows are put there in one pass, the order a sort would give. False, with the rows untouched,
    /// when the ids are not n distinct consecutive numbers.
    /// </summary>
    private static bool PlaceById(Span<RequestRecord> rows)
    {
        if (rows.Length < 2) return true;
        long min = long.MaxValue, max = long.MinValue;
        foreach (var r in rows) { min = Math.Min(min, r.RequestId); max = Math.Max(max, r.RequestId); }
        if (max - min != rows.Length - 1) return false;
        var placed = new RequestRecord?[rows.Length];
        foreach (var r in rows)
        {
            ref var slot = ref placed[r.RequestId - min];
            if (slot is not null) return false;
            slot = r;
        }
        placed.AsSpan().CopyTo(rows!);
        return true;
    }

    private static void RouteOpenLoop(IReadOnlyList<RequestSpec> requests, ReplicaEngine[] engines, IRouter router)
    {
        var promptReplica = new Dictionary<long, int>();
        foreach (var spec in ClusterDriver.InArrivalOrder(requests))
            engines[ClusterDriver.Route(spec, router, engines, promptReplica)].AddArrival(new SimRequest(spec, spec.ArrivalTimeS));
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
