using FsCheck.Xunit;
using RLMServing.Costs;
using RLMServing.Metrics;
using RLMServing.Routing;
using RLMServing.Scenarios;
using RLMServing.Simulation;
using RLMServing.Workloads;
using Xunit;

namespace RLMServing.Tests.Simulation;

/// <summary>Routers, the lockstep driver and heterogeneous replica groups.</summary>
public class ClusterTests
{
    private static readonly RouterKind[] AllRouters = Enum.GetValues<RouterKind>();

    /// <summary>The lockstep driver gives byte-identical results to running replicas one after another.</summary>
    [Property(MaxTest = 100)]
    public void LockstepEqualsIndependentReplicasForStatelessRouters(int seed)
    {
        var s = TestScenarios.Random(seed);
        if (s.Workload!.Arrival is ClosedLoopArrivals) s = s with { Workload = s.Workload with { Arrival = new PoissonArrivals(50) } };
        s = s with { Scheduler = s.Scheduler with { Router = seed % 2 == 0 ? RouterKind.RoundRobin : RouterKind.Random } };
        var gpu = TestScenarios.GpuFor(seed);
        var independent = TestScenarios.Run(s, gpu, check: false);
        var lockstep = TestScenarios.RunGroups(s, [TestScenarios.Group(s, gpu)], check: true, lockstep: true);
        TestScenarios.AssertIdentical(independent, lockstep);
    }

    [Property(MaxTest = 100)]
    public void RoutersSendEveryRequestExactlyOnce(int seed)
    {
        var s = TestScenarios.RandomCombination(seed);
        var gpu = TestScenarios.GpuFor(seed);
        var result = TestScenarios.Run(s, gpu);
        var specs = (s.ReplayRequests ?? s.Workload!.Generate(s.Seed)).Select(r => r.Id).Order().ToList();
        Assert.Equal(specs, result.Requests.Select(r => r.RequestId).ToList());
        Assert.All(result.Requests, r => Assert.InRange(r.Replica, 0, s.Hardware.Replicas - 1));
    }

    [Fact]
    public void RoutersCountEveryChoiceOnce()
    {
        var loads = Enumerable.Range(0, 4).Select(i => new FakeLoad(i % 2, 10 * i, 100)).ToList<IReplicaLoad>();
        foreach (var kind in AllRouters)
        {
            var router = Routers.Create(kind, 7);
            var counts = new int[4];
            for (int i = 0; i < 400; i++) counts[router.Route(new RequestSpec(i, 0, 10, 0, 10) { PrefixHashes = [i % 5], PrefixHashTokens = 16 }, loads)]++;
            Assert.Equal(400, counts.Sum());
            Assert.Equal(kind is not (RouterKind.RoundRobin or RouterKind.Random), router.StateDependent);
        }
    }

    [Fact]
    public void LeastOutstandingAvoidsTheBusyReplicaAndRotatesTies()
    {
        var router = Routers.Create(RouterKind.LeastOutstanding, 0);
        var loads = new List<IReplicaLoad> { new FakeLoad(5, 0, 10), new FakeLoad(1, 0, 10), new FakeLoad(1, 0, 10) };
        var picks = Enumerable.Range(0, 4).Select(i => router.Route(new RequestSpec(i, 0, 1, 0, 1), loads)).ToList();
        Assert.DoesNotContain(0, picks);
        Assert.Contains(1, picks);
        Assert.Contains(2, picks);
    }

    [Fact]
    public void LeastKvComparesFractionsOfEachReplicasCapacity()
    {
        var router = Routers.Create(RouterKind.LeastKv, 0);
        // 60 of 100 blocks (60%) against 300 of 1000 (30%): the larger replica is less loaded.
        var loads = new List<IReplicaLoad> { new FakeLoad(0, 60, 100), new FakeLoad(9, 300, 1000) };
        Assert.Equal(1, router.Route(new RequestSpec(0, 0, 1, 0, 1), loads));
    }

    [Fact]
    public void PrefixAffinityFollowsTheLongestMatchUntilTheImbalanceIsTooLarge()
    {
        var router = Routers.Create(RouterKind.PrefixAffinity, 0, balanceThreshold: 3);
        var a = new FakeLoad(0, 0, 100);
        var b = new FakeLoad(0, 0, 100);
        var loads = new List<IReplicaLoad> { a, b };
        var first = router.Route(new RequestSpec(0, 0, 64, 0, 1) { PrefixHashes = [1, 2, 3], PrefixHashTokens = 16 }, loads);
        var other = router.Route(new RequestSpec(1, 0, 64, 0, 1) { PrefixHashes = [9, 8], PrefixHashTokens = 16 }, loads);
        Assert.NotEqual(first, other);   // no match: least outstanding with rotating ties
        var again = router.Route(new RequestSpec(2, 0, 64, 0, 1) { PrefixHashes = [1, 2, 7], PrefixHashTokens = 16 }, loads);
        Assert.Equal(first, again);
        ((FakeLoad)loads[first]).Outstanding = 10;
        var balanced = router.Route(new RequestSpec(3, 0, 64, 0, 1) { PrefixHashes = [1, 2, 3], PrefixHashTokens = 16 }, loads);
        Assert.Equal(other, balanced);
    }

    /// <summary>Join-the-shortest-queue beats round robin on tail TTFT when request sizes vary (a classic queueing result).</summary>
    [Fact]
    public void LeastOutstandingCutsTailTtftOverRoundRobinUnderSkew()
    {
        var s = TestScenarios.Random(3) with
        {
            Hardware = new HardwareConfig("test-gpu", 4, 1),
            ReplayRequests = Enumerable.Range(0, 400).Select(i => new RequestSpec(i, i * 0.004, 50, 0, i % 8 == 0 ? 600 : 10)).ToList(),
            Workload = null,
        };
        s = s with { Scheduler = s.Scheduler with { Batching = BatchingPolicy.Continuous, MaxNumSeqs = 4, MaxNumBatchedTokens = 512, Queue = QueueOrder.Fcfs } };
        var gpu = TestScenarios.SmallGpu(64);
        var rr = TestScenarios.Run(s, gpu);
        var lo = TestScenarios.Run(s with { Scheduler = s.Scheduler with { Router = RouterKind.LeastOutstanding } }, gpu);
        Assert.True(lo.Summary.P99TtftMs < rr.Summary.P99TtftMs, $"least_outstanding p99 TTFT {lo.Summary.P99TtftMs} vs round_robin {rr.Summary.P99TtftMs}");
    }

    /// <summary>Heterogeneous groups: each replica uses its own group's KV capacity and cost model.</summary>
    [Fact]
    public void HeterogeneousGroupsKeepTheirOwnCapacityAndCost()
    {
        var s = TestScenarios.RandomCombination(11) with { Workload = null };
        s = s with
        {
            ReplayRequests = Enumerable.Range(0, 200).Select(i => new RequestSpec(i, i * 0.002, 100, 0, 100)).ToList(),
            Scheduler = s.Scheduler with { Router = RouterKind.LeastKv, Preemption = PreemptionMode.Recompute },
        };
        var small = TestScenarios.SmallGpu(1);
        var large = TestScenarios.SmallGpu(8);
        var result = TestScenarios.RunGroups(s, [TestScenarios.Group(s, small) with { Name = "small", Replicas = 1 }, TestScenarios.Group(s, large) with { Name = "large", Replicas = 2 }], check: true);
        Assert.Equal(200, result.Requests.Count(r => r.Status == RequestStatus.Completed));
        var perReplica = result.Requests.GroupBy(r => r.Replica).ToDictionary(g => g.Key, g => g.Count());
        Assert.Equal(3, perReplica.Count);
        // The larger replicas hold more KV, so least_kv sends them more of the work.
        Assert.True(perReplica[1] > perReplica[0] && perReplica[2] > perReplica[0], string.Join(",", perReplica.OrderBy(p => p.Key)));
        long smallBlocks = RLMServing.Memory.KvCachePlan.For(TestScenarios.Tiny, small, 1, s.KvCache, s.Scheduler).TotalBlocks;
        long largeBlocks = RLMServing.Memory.KvCachePlan.For(TestScenarios.Tiny, large, 1, s.KvCache, s.Scheduler).TotalBlocks;
        Assert.True(largeBlocks > smallBlocks);
        Assert.All(result.Timeseries.Where(p => p.Replica == 0), p => Assert.Equal((double)p.KvBlocksUsed / smallBlocks, p.KvUsage, 9));
        Assert.All(result.Timeseries.Where(p => p.Replica > 0), p => Assert.Equal((double)p.KvBlocksUsed / largeBlocks, p.KvUsage, 9));
    }

    [Property(MaxTest = 80)]
    public void DisaggregationTransfersEachRequestsKvOnce(int seed)
    {
        var s = Disaggregated(seed, bandwidthGBps: 10);
        var gpu = TestScenarios.GpuFor(seed);
        int prefillReplicas = 1 + Math.Abs(seed % 2), decodeReplicas = 1 + Math.Abs(seed / 2 % 2);
        var result = TestScenarios.RunGroups(s, DisaggregatedGroups(s, gpu, prefillReplicas, decodeReplicas), check: true);
        var ids = s.ReplayRequests!.Select(r => r.Id).Order().ToList();
        Assert.Equal(ids, result.Requests.Select(r => r.RequestId).ToList());
        bool OnDecode(RequestRecord r) => r.Replica >= prefillReplicas;
        // Everything that decodes was handed over, and each hand-off is one transfer.
        Assert.All(result.Requests.Where(r => r.Status == RequestStatus.Completed && r.OutputTokens > 1), r => Assert.True(OnDecode(r), $"request {r.RequestId} decoded on prefill replica {r.Replica}"));
        Assert.All(result.Requests.Where(r => r.Status == RequestStatus.Completed && r.OutputTokens == 1), r => Assert.False(OnDecode(r)));
        Assert.Equal(result.Requests.Count(OnDecode), result.Summary.KvTransfers);
    }

    [Fact]
    public void ASlowerKvLinkDelaysDecodingButNotTheFirstToken()
    {
        var gpu = TestScenarios.SmallGpu(8);
        var fast = Disaggregated(5, bandwidthGBps: 100);
        var slow = Disaggregated(5, bandwidthGBps: 0.001);
        var a = TestScenarios.RunGroups(fast, DisaggregatedGroups(fast, gpu, 1, 1));
        var b = TestScenarios.RunGroups(slow, DisaggregatedGroups(slow, gpu, 1, 1));
        Assert.Equal(a.Summary.MeanTtftMs, b.Summary.MeanTtftMs, 9);
        Assert.True(b.Summary.MeanTpotMs > a.Summary.MeanTpotMs);
        Assert.True(b.Summary.MeanKvTransferMs > 100 * a.Summary.MeanKvTransferMs);
    }

    private static Scenario Disaggregated(int seed, double bandwidthGBps)
    {
        var s = TestScenarios.RandomCombination(seed);
        var workload = s.Workload! with { Arrival = new PoissonArrivals(100) };
        return s with
        {
            Workload = workload,
            ReplayRequests = TestScenarios.WithPrefixes(workload.Generate(s.Seed), new Random(seed)),
            Cluster = new ClusterConfig([], 32, new KvTransferConfig(bandwidthGBps, 0.2)),
        };
    }

    private static IReadOnlyList<ReplicaGroup> DisaggregatedGroups(Scenario s, RLMServing.Catalog.GpuSpec gpu, int prefill, int decode) =>
    [
        TestScenarios.Group(s, gpu) with { Name = "prefill", Replicas = prefill, Role = ReplicaRole.Prefill },
        TestScenarios.Group(s, gpu) with { Name = "decode", Replicas = decode, Role = ReplicaRole.Decode },
    ];

    private sealed class FakeLoad(int outstanding, long kv, long capacity) : IReplicaLoad
    {
        public int Outstanding { get; set; } = outstanding;
        public long KvDemandBlocks { get; } = kv;
        public long CapacityBlocks { get; } = capacity;
    }
}
