using RLMServing.Metrics;
using RLMServing.Scenarios;
using RLMServing.Workloads;
using Xunit;

namespace RLMServing.Tests.Simulation;

/// <summary>Serving behaviour the simulator must show: rejection, overload, head-of-line blocking, thinking budgets.</summary>
public class SimulatorBehaviourTests
{
    private static Scenario Base(BatchingPolicy batching, ArrivalProcess arrival, int requests, ITokenDistribution output,
        int maxSeqs = 16, double thinking = 0.0, int? maxThinking = null) =>
        new("behaviour", 3, new HardwareConfig("test-gpu", 1, 1), "tiny", new CostModelConfig("roofline", null, 0.6, 0.85, 1.0, 10),
            new SyntheticWorkload(requests, arrival, new ConstantTokens(64), output, thinking, null, null, 100_000, maxThinking, null),
            null, new SchedulerConfig(batching, maxSeqs, 512, QueueOrder.Fcfs, PreemptionMode.Recompute, 0, RouterKind.RoundRobin),
            new KvCacheConfig(16, 1.0, 0), new SloConfig(null, null, null), new MetricsConfig(0.1), new SimulationConfig(true));

    [Fact]
    public void PromptLargerThanTheWholeCacheIsRejectedWithAReason()
    {
        var gpu = TestScenarios.SmallGpu(1);   // about 1,200 KV tokens for the tiny model
        var s = Base(BatchingPolicy.Continuous, new PoissonArrivals(50), 10, new ConstantTokens(10));
        var specs = s.Workload!.Generate(s.Seed).Select((r, i) => i == 3 ? r with { PromptTokens = 50_000 } : r).ToList();
        var result = TestScenarios.Run(s with { ReplayRequests = specs }, gpu);
        var rejected = Assert.Single(result.Requests, r => r.Status == RequestStatus.Rejected);
        Assert.Equal(3, rejected.RequestId);
        Assert.Equal("prompt_exceeds_kv_cache", rejected.RejectReason);
        Assert.Equal(9, result.Summary.Completed);
        Assert.Equal(1, result.Summary.Failed);
    }

    /// <summary>Every registered batching policy (the registry, never a hard-coded list).</summary>
    public static TheoryData<string> Policies() => new(RLMServing.Simulation.Batching.BatchPlanners.All.Select(e => e.Policy.Name));

    [Theory]
    [MemberData(nameof(Policies))]
    public void OverloadFinishesAndIsFlaggedUnstable(string policy)
    {
        var batching = RLMServing.Simulation.Batching.BatchPlanners.Find(policy)!.Policy;
        // Ten times more requests per second than the replica can serve: every request still ends.
        var s = Base(batching, new PoissonArrivals(2000), 3000, new ConstantTokens(200));
        var result = TestScenarios.Run(s, TestScenarios.SmallGpu(64), check: false);
        Assert.Equal(3000, result.Summary.Completed);
        Assert.True(result.Summary.Unstable);
        Assert.Contains("capacity", result.Summary.UnstableReason);
    }

    [Fact]
    public void LightLoadIsStable()
    {
        var s = Base(BatchingPolicy.Continuous, new PoissonArrivals(5), 300, new ConstantTokens(50));
        Assert.False(TestScenarios.Run(s, TestScenarios.SmallGpu(64)).Summary.Unstable);
    }

    [Fact]
    public void StaticBatchingShowsHeadOfLineBlocking()
    {
        // Bimodal outputs: short requests stuck behind long ones in a static batch wait far longer.
        var output = new MixtureTokens([(0.7, new ConstantTokens(20)), (0.3, new ConstantTokens(2000))]);
        var st = TestScenarios.Run(Base(BatchingPolicy.Static, new PoissonArrivals(60), 600, output), TestScenarios.SmallGpu(64));
        var co = TestScenarios.Run(Base(BatchingPolicy.Continuous, new PoissonArrivals(60), 600, output), TestScenarios.SmallGpu(64));
        Assert.True(st.Summary.MeanTtftMs > 3 * co.Summary.MeanTtftMs, $"static TTFT {st.Summary.MeanTtftMs} vs continuous {co.Summary.MeanTtftMs}");
        Assert.True(co.Summary.OutputThroughput >= st.Summary.OutputThroughput);
    }

    [Fact]
    public void ThinkingBudgetTruncatesThinkingAndTheAnswerFollows()
    {
        var s = Base(BatchingPolicy.Continuous, new PoissonArrivals(20), 50, new ConstantTokens(1000), thinking: 0.9, maxThinking: 300);
        var result = TestScenarios.Run(s, TestScenarios.SmallGpu(64));
        Assert.All(result.Requests, r =>
        {
            Assert.Equal(300, r.ThinkingTokens);
            Assert.Equal(400, r.OutputTokens);   // 300 thinking + the 100-token answer
            Assert.True(r.ThinkingTruncated);
            Assert.True(r.FirstAnswerTokenTimeS > r.FirstTokenTimeS);
        });
    }

    [Fact]
    public void TimeToFirstAnswerTokenFollowsTheThinking()
    {
        var s = Base(BatchingPolicy.Continuous, new PoissonArrivals(1), 20, new ConstantTokens(500), thinking: 0.8);
        var result = TestScenarios.Run(s, TestScenarios.SmallGpu(64));
        foreach (var r in result.Requests)
        {
            // 400 thinking tokens: the answer starts 400 decode steps after the first token.
            double perToken = (r.CompletionTimeS!.Value - r.FirstTokenTimeS!.Value) / (r.OutputTokens - 1);
            Assert.Equal(400 * perToken, r.FirstAnswerTokenTimeS!.Value - r.FirstTokenTimeS.Value, 2);
        }
    }

    [Fact]
    public void ClosedLoopKeepsConcurrencyBounded()
    {
        var s = Base(BatchingPolicy.Continuous, new ClosedLoopArrivals(4, 10), 100, new ConstantTokens(30));
        var result = TestScenarios.Run(s, TestScenarios.SmallGpu(64));
        Assert.Equal(100, result.Summary.Completed);
        Assert.All(result.Timeseries, p => Assert.True(p.Running + p.Waiting <= 4));
    }

    [Fact]
    public void IdleSpellsAreSampledAtTheirEndsNotAtEveryInterval()
    {
        // 300 requests at 3/s last about 100 s; short requests leave the replica idle most of the time. Busy time is
        // sampled every interval; an idle spell by the grid points at its two ends (nothing changes in between).
        var s = Base(BatchingPolicy.Continuous, new ConstantArrivals(3), 300, new ConstantTokens(5)) with { Metrics = new MetricsConfig(0.05) };
        var result = TestScenarios.Run(s, TestScenarios.SmallGpu(64));
        double duration = result.Requests.Max(r => r.CompletionTimeS!.Value);
        Assert.InRange(result.Timeseries.Count, 300, duration / 0.05 * 0.5);
        var times = result.Timeseries.Select(p => p.TimeS).ToList();
        Assert.All(times.Zip(times.Skip(1)), g => Assert.True(g.Second - g.First <= 1 / 3.0 + 0.05 + 1e-9, $"gap {g.First} -> {g.Second}"));
        Assert.Contains(result.Timeseries, p => p.Running == 0 && p.Waiting == 0);
    }

    [Fact]
    public void RequestsThatExactlyFillTheCacheAreServed()
    {
        var gpu = TestScenarios.SmallGpu(1);
        var plan = TestScenarios.Run(Base(BatchingPolicy.Continuous, new PoissonArrivals(1), 1, new ConstantTokens(1)), gpu).KvPlan;
        long cap = plan.CapacityTokens;
        // Peak KV = prompt + output - 1: exactly the capacity is served, one more token is rejected.
        var specs = new[]
        {
            new RequestSpec(0, 0, (int)cap, 0, 1),
            new RequestSpec(1, 1, 100, 0, (int)cap - 99),
            new RequestSpec(2, 2, 100, 0, (int)cap - 98),
            new RequestSpec(3, 3, (int)cap + 1, 0, 1),
        };
        var result = TestScenarios.Run(Base(BatchingPolicy.Continuous, new PoissonArrivals(1), 4, new ConstantTokens(1)) with { ReplayRequests = specs }, gpu);
        Assert.Equal(RequestStatus.Completed, result.Requests[0].Status);
        Assert.Equal(RequestStatus.Completed, result.Requests[1].Status);
        Assert.Equal("exceeds_kv_cache", result.Requests[2].RejectReason);
        Assert.Equal("prompt_exceeds_kv_cache", result.Requests[3].RejectReason);
    }

    [Fact]
    public void ClosedLoopWithFewerClientsThanReplicasServesEveryRequest()
    {
        var s = Base(BatchingPolicy.Continuous, new ClosedLoopArrivals(1, 0), 30, new ConstantTokens(10));
        s = s with { Hardware = s.Hardware with { Replicas = 3 } };
        var result = TestScenarios.Run(s, TestScenarios.SmallGpu(64));
        Assert.Equal(30, result.Summary.Completed);
        Assert.All(result.Requests, r => Assert.Equal(0, r.Replica));
    }

    [Fact]
    public void ReplicasShareTheLoadRoundRobin()
    {
        var s = Base(BatchingPolicy.Continuous, new PoissonArrivals(100), 400, new ConstantTokens(30));
        s = s with { Hardware = s.Hardware with { Replicas = 4 } };
        var result = TestScenarios.Run(s, TestScenarios.SmallGpu(64));
        Assert.All(result.Requests.GroupBy(r => r.Replica), g => Assert.Equal(100, g.Count()));
    }

    [Fact]
    public void ChunkedPrefillBoundsTheDecodeStall()
    {
        // A long prompt arriving into a decoding batch: chunked prefill keeps inter-token gaps near the budget.
        var output = new ConstantTokens(300);
        var specs = Enumerable.Range(0, 40).Select(i => new RequestSpec(i, i * 0.01, i % 5 == 4 ? 4000 : 64, 0, 300)).ToList();
        Scenario With(BatchingPolicy b) => Base(b, new PoissonArrivals(1), 40, output) with { ReplayRequests = specs };
        var co = TestScenarios.Run(With(BatchingPolicy.Continuous), TestScenarios.SmallGpu(64));
        var ch = TestScenarios.Run(With(BatchingPolicy.ChunkedPrefill), TestScenarios.SmallGpu(64));
        Assert.True(ch.Summary.P99ItlMs <= co.Summary.P99ItlMs, $"chunked p99 ITL {ch.Summary.P99ItlMs} vs continuous {co.Summary.P99ItlMs}");
    }

    [Fact]
    public void IdleTimeCostsNoTimeSeriesPoints()
    {
        // Fifty requests a day apart at a 0.1 s sample interval: every idle spell is one point at each end, never
        // the 864,000 grid points between, so memory follows the work and not the simulated seconds.
        var specs = Enumerable.Range(0, 50).Select(i => new RequestSpec(i, i * 86_400.0, 64, 0, 20)).ToList();
        var s = Base(BatchingPolicy.Continuous, new PoissonArrivals(1), 50, new ConstantTokens(20)) with { ReplayRequests = specs };
        var result = TestScenarios.Run(s, TestScenarios.SmallGpu(64));
        Assert.Equal(50, result.Summary.Completed);
        Assert.InRange(result.Timeseries.Count, 50, 50 * 6);
        // The point just before each arrival shows the idle state: nothing waiting or running.
        Assert.All(result.Timeseries.Where(p => p.TimeS % 86_400 > 86_000), p => Assert.Equal((0, 0), (p.Waiting, p.Running)));
    }
}
