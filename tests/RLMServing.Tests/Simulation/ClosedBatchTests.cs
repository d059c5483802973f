using FsCheck.Xunit;
using RLMServing.Metrics;
using RLMServing.Scenarios;
using RLMServing.Workloads;
using Xunit;

namespace RLMServing.Tests.Simulation;

/// <summary>workload.arrival closed_batches: a batch of N requests, wait for all of them, then the next N.</summary>
public class ClosedBatchTests
{
    private static Scenario Base(ClosedBatchArrivals arrival, int requests, ITokenDistribution output, int replicas = 1,
        RouterKind router = RouterKind.RoundRobin, int maxSeqs = 16) =>
        new("batches", 5, new HardwareConfig("test-gpu", replicas, 1), "tiny", new CostModelConfig("roofline", null, 0.6, 0.85, 1.0, 10),
            new SyntheticWorkload(requests, arrival, new LogNormalTokens(64, 0.5), output, 0.5, null, null, 100_000, null, null),
            null, new SchedulerConfig(BatchingPolicy.Continuous, maxSeqs, 512, QueueOrder.Fcfs, PreemptionMode.Recompute, 0, router),
            new KvCacheConfig(16, 1.0, 0), new SloConfig(null, null, null), new MetricsConfig(0.05), new SimulationConfig(true));

    /// <summary>
    /// Request i belongs to batch i / N; every request of a batch arrives at the batch's start; batch k+1 starts exactly
    /// at the last finish of batch k (completion, or arrival for a rejection) plus the gap, so none arrives earlier.
    /// </summary>
    private static void AssertBatches(IReadOnlyList<RequestRecord> rows, int batch, double gapMs)
    {
        var ordered = rows.OrderBy(r => r.RequestId).ToList();
        var batches = ordered.Select((r, i) => (r, i)).GroupBy(x => x.i / batch, x => x.r).ToList();
        double expectedStart = 0;
        foreach (var b in batches)
        {
            Assert.All(b, r => Assert.Equal(expectedStart, r.ArrivalTimeS));
            double last = b.Max(r => r.CompletionTimeS ?? r.ArrivalTimeS);
            expectedStart = last + gapMs / 1000.0;
        }
    }

    [Theory]
    [InlineData(10, 0.0, 1)]
    [InlineData(7, 25.0, 1)]
    [InlineData(16, 3.5, 3)]
    [InlineData(200, 0.0, 2)]
    public void BatchesArriveAtTheLastCompletionPlusTheGap(int batch, double gapMs, int replicas)
    {
        var output = new MixtureTokens([(0.6, new ConstantTokens(10)), (0.4, new ConstantTokens(300))]);
        var s = Base(new ClosedBatchArrivals(batch, gapMs), 103, output, replicas);
        var result = TestScenarios.Run(s, TestScenarios.SmallGpu(64));
        Assert.Equal(103, result.Requests.Count);
        Assert.Equal(103, result.Summary.Completed);
        AssertBatches(result.Requests, batch, gapMs);
        int batches = (103 + batch - 1) / batch;
        Assert.Equal(batches, result.Requests.Select(r => r.ArrivalTimeS).Distinct().Count());
        if (replicas > 1 && batch >= replicas) Assert.Equal(replicas, result.Requests.Select(r => r.Replica).Distinct().Count());
    }

    [Fact]
    public void AtMostABatchIsEverInTheSystem()
    {
        var s = Base(new ClosedBatchArrivals(6), 60, new ConstantTokens(40));
        var result = TestScenarios.Run(s, TestScenarios.SmallGpu(64));
        Assert.All(result.Timeseries, p => Assert.True(p.Running + p.Waiting <= 6, $"{p.Running} running + {p.Waiting} waiting at {p.TimeS}"));
        Assert.Contains(result.Timeseries, p => p.Running == 6);
    }

    [Fact]
    public void TheBatchWaitsForItsSlowestRequest()
    {
        // One long request per batch holds the whole next batch back: head-of-line blocking at the client, the
        // study's static batching on a continuous engine.
        var specs = Enumerable.Range(0, 20).Select(i => new RequestSpec(i, 0, 32, 0, i % 5 == 0 ? 400 : 5)).ToList();
        var s = Base(new ClosedBatchArrivals(5), 20, new ConstantTokens(1)) with { ReplayRequests = specs };
        var result = TestScenarios.Run(s, TestScenarios.SmallGpu(64));
        AssertBatches(result.Requests, 5, 0);
        for (int k = 1; k < 4; k++)
        {
            var slowest = result.Requests.Single(r => r.RequestId == (k - 1) * 5);
            Assert.All(result.Requests.Where(r => r.RequestId / 5 == k), r => Assert.Equal(slowest.CompletionTimeS!.Value, r.ArrivalTimeS));
        }
    }

    [Fact]
    public void ARejectedRequestEndsItsShareOfTheBatchAtItsArrival()
    {
        var gpu = TestScenarios.SmallGpu(1);
        var specs = Enumerable.Range(0, 8).Select(i => new RequestSpec(i, 0, i == 2 ? 1_000_000 : 16, 0, 20)).ToList();
        var s = Base(new ClosedBatchArrivals(4, 10), 8, new ConstantTokens(1)) with { ReplayRequests = specs };
        var result = TestScenarios.Run(s, gpu);
        Assert.Equal(RequestStatus.Rejected, result.Requests[2].Status);
        AssertBatches(result.Requests, 4, 10);
        // Every request of a batch rejected: the next batch follows at once (plus the gap).
        var allRejected = Enumerable.Range(0, 8).Select(i => new RequestSpec(i, 0, i < 4 ? 1_000_000 : 16, 0, 20)).ToList();
        var r2 = TestScenarios.Run(s with { ReplayRequests = allRejected }, gpu);
        Assert.All(r2.Requests.Where(r => r.RequestId >= 4), r => Assert.Equal(0.010, r.ArrivalTimeS, 12));
    }

    [Theory]
    [InlineData(RouterKind.RoundRobin)]
    [InlineData(RouterKind.LeastOutstanding)]
    [InlineData(RouterKind.PowerOfTwo)]
    public void EveryRouterSpreadsABatchAndKeepsTheBoundary(RouterKind router)
    {
        var s = Base(new ClosedBatchArrivals(12, 1), 48, new ConstantTokens(50), replicas: 4, router: router);
        var result = TestScenarios.Run(s, TestScenarios.SmallGpu(64));
        AssertBatches(result.Requests, 12, 1);
        Assert.Equal(48, result.Summary.Completed);
        if (router != RouterKind.PowerOfTwo)
            Assert.All(result.Requests.GroupBy(r => (r.RequestId / 12, r.Replica)), g => Assert.Equal(3, g.Count()));
    }

    [Fact]
    public void SameSeedGivesIdenticalOutput()
    {
        var s = Base(new ClosedBatchArrivals(9, 2), 80, new LogNormalTokens(60, 0.8), replicas: 2, router: RouterKind.Random);
        var gpu = TestScenarios.SmallGpu(2);
        TestScenarios.AssertIdentical(TestScenarios.Run(s, gpu), TestScenarios.Run(s, gpu));
        var other = TestScenarios.Run(s with { Seed = 6 }, gpu);
        Assert.NotEqual(TestScenarios.Run(s, gpu).Requests, other.Requests);
    }

    /// <summary>Any random scenario (every batching policy, queue order, tight KV, cluster and memory policies) keeps the boundaries.</summary>
    [Property(MaxTest = 60)]
    public void RandomScenariosKeepBatchBoundaries(int seed)
    {
        var s = TestScenarios.RandomCombination(seed);
        var rng = new Random(seed ^ 0xba7c4);
        var arrival = new ClosedBatchArrivals(1 + rng.Next(25), rng.Next(3) * 5.0);
        s = s with { Workload = s.Workload! with { Arrival = arrival }, ReplayRequests = s.ReplayRequests!.Select(r => r with { ArrivalTimeS = 0 }).ToList() };
        var result = TestScenarios.Run(s, TestScenarios.GpuFor(seed));
        Assert.Equal(s.ReplayRequests!.Count, result.Requests.Count);
        AssertBatches(result.Requests, arrival.Batch, arrival.GapMs);
    }
}
