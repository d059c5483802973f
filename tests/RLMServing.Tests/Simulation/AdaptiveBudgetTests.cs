using FsCheck.Xunit;
using RLMServing.Metrics;
using RLMServing.Policies;
using RLMServing.Scenarios;
using RLMServing.Workloads;
using Xunit;

namespace RLMServing.Tests.Simulation;

/// <summary>
/// Adaptive thinking budgets re-evaluated while requests run: the replica's budget follows the queue and the KV
/// usage at every scheduler turn, and every admitted request still thinking follows it. The engine runs with
/// invariant checks on, so each turn it also re-derives that the budget is within [floor, ceiling], that no request
/// thinks more than its ceiling or less than the floor, and that its truncation flag says exactly whether it was cut.
/// </summary>
public class AdaptiveBudgetTests
{
    private const int Cases = 120;

    /// <summary>A random scenario (every batching policy, tight KV caches) with an adaptive budget and, by the seed, compression and speculation.</summary>
    private static Scenario Adaptive(int seed)
    {
        var s = TestScenarios.WithRandomPolicies(TestScenarios.Random(seed), seed, 4 | (int)((uint)seed % 4));
        var p = s.PoliciesOrNone;
        return s with { Policies = p with { ThinkingBudget = p.ThinkingBudget! with { Policy = ThinkingBudgetPolicy.Adaptive } } };
    }

    [Property(MaxTest = Cases)]
    public void AdaptiveBudgetsStayInBoundsAndCountTruncationExactly(int seed)
    {
        var s = Adaptive(seed);
        var tb = s.PoliciesOrNone.ThinkingBudget!;
        int max = tb.MaxThinkingTokens!.Value;
        var specs = s.Workload!.Generate(s.Seed).ToDictionary(r => r.Id);
        var result = TestScenarios.Run(s, TestScenarios.GpuFor(seed), check: true);
        Assert.Equal(specs.Count, result.Requests.Count);
        foreach (var r in result.Requests.Where(r => r.Status == RequestStatus.Completed))
        {
            var spec = specs[r.RequestId];
            int ceiling = Math.Min(spec.ThinkingTokens, max);
            // Never above the ceiling, never below the floor (or the request's own thinking), the answer in full.
            Assert.InRange(r.ThinkingTokens, Math.Min(ceiling, tb.FloorTokens), ceiling);
            Assert.Equal(spec.AnswerTokens, r.OutputTokens - r.ThinkingTokens);
            Assert.True(r.OutputTokens <= spec.OutputTokens);
            Assert.Equal(r.ThinkingTokens < spec.ThinkingTokens || spec.ThinkingTruncated, r.ThinkingTruncated);
        }
        Assert.Equal(result.Requests.Count(r => r.ThinkingTruncated), result.Summary.ThinkingTruncated);
        Assert.InRange(result.Summary.MeanThinkingBudget!.Value, tb.FloorTokens, max);
    }

    [Property(MaxTest = Cases)]
    public void FastForwardEqualsSteppingWithAdaptiveBudgets(int seed)
    {
        var s = Adaptive(seed);
        var gpu = TestScenarios.GpuFor(seed);
        var fast = TestScenarios.Run(s, gpu, check: false);
        var step = TestScenarios.Run(s with { Simulation = new SimulationConfig(FastForward: false) }, gpu, check: false);
        TestScenarios.AssertIdentical(step, fast);
    }

    /// <summary>
    /// One request thinks alone (full budget) until a burst queues behind it: its budget shrinks mid-decode, so it
    /// stops thinking (truncated) though it had been admitted with the full budget; the requests admitted last, once
    /// the queue has drained, think in full.
    /// </summary>
    [Fact]
    public void ARunningRequestIsCutWhenAQueueFormsAndLaterOnesThinkInFull()
    {
        var first = new RequestSpec(0, 0, 50, 1000, 20);
        var burst = Enumerable.Range(1, 12).Select(i => new RequestSpec(i, 0.05, 50, 1000, 20));
        var tb = new ThinkingBudgetConfig(ThinkingBudgetPolicy.Adaptive, 1000, 100, 2, null);
        var result = RunReplay([first, .. burst], tb, maxNumSeqs: 2);
        var byId = result.Requests.ToDictionary(r => r.RequestId);
        Assert.True(byId[0].ThinkingTruncated);
        Assert.InRange(byId[0].ThinkingTokens, 100, 999);
        var last = result.Requests.OrderBy(r => r.FirstScheduledTimeS).Last();
        Assert.Equal(1000, last.ThinkingTokens);
        Assert.False(last.ThinkingTruncated);
        Assert.InRange(result.Summary.MeanThinkingBudget!.Value, 100, 999);
        // Without the budget moving mid-decode the first request would never have been cut.
        var fixedAtAdmission = RunReplay([first, .. burst], tb with { Policy = ThinkingBudgetPolicy.Static }, maxNumSeqs: 2);
        Assert.False(fixedAtAdmission.Requests.Single(r => r.RequestId == 0).ThinkingTruncated);
    }

    /// <summary>
    /// A request admitted while others wait gets a short budget; when the queue drains while it still thinks, the
    /// budget comes back and it thinks in full (not truncated).
    /// </summary>
    [Fact]
    public void ARestoredBudgetLetsARequestStillThinkingThinkOn()
    {
        // Two slots, three requests at once: 0 (short) and 1 run while 2 waits.
        var requests = new[]
        {
            new RequestSpec(0, 0, 50, 200, 10),
            new RequestSpec(1, 0, 50, 2000, 10),
            new RequestSpec(2, 0, 50, 2000, 10),
        };
        var tb = new ThinkingBudgetConfig(ThinkingBudgetPolicy.Adaptive, 2000, 100, 1, null);
        var result = RunReplay(requests, tb, maxNumSeqs: 2);
        var r2 = result.Requests.Single(r => r.RequestId == 2);
        // 1 is admitted with a short budget (three waiting: 500, then one waiting: 1000); once 0 ends and 2 is admitted
        // nobody waits, the budget returns to 2000, and 1, still thinking, thinks in full, as does 2.
        Assert.Equal(2000, result.Requests.Single(r => r.RequestId == 1).ThinkingTokens);
        Assert.Equal(2000, r2.ThinkingTokens);
        Assert.Equal(200, result.Requests.Single(r => r.RequestId == 0).ThinkingTokens);
        Assert.Equal(0, result.Summary.ThinkingTruncated);
        Assert.InRange(result.Summary.MeanThinkingBudget!.Value, 1000, 1999);
    }

    [Fact]
    public void TheControlLawShrinksWithQueueAndKvAndMovesPastTheBand()
    {
        var tb = new ThinkingBudgetConfig(ThinkingBudgetPolicy.Adaptive, 16384, 1024, 8, null) { KvThreshold = 0.8, Hysteresis = 0.2 };
        Assert.Equal(16384, tb.BudgetFor(0, 0.8));
        Assert.Equal(8192, tb.BudgetFor(0, 1.0));    // a full cache weighs as queue_scale waiting requests
        Assert.Equal(8192, tb.BudgetFor(8, 0.5));
        Assert.Equal(5461, tb.BudgetFor(8, 1.0));
        Assert.Equal(1024, tb.BudgetFor(10_000, 0));
        Assert.Equal(10000, tb.Follow(10000, 9000));   // inside the 20% band: stays
        Assert.Equal(7000, tb.Follow(10000, 7000));    // past it: moves
        Assert.Equal(16384, tb.Follow(15000, 16384));  // the ceiling always restores
        Assert.Equal(1024, tb.Follow(1100, 1024));     // the floor is always reached
        Assert.Equal(tb.Follow(10000, 7000), tb.Follow(tb.Follow(10000, 7000), 7000));   // idempotent
    }

    private static RLMServing.Simulation.SimulationResult RunReplay(IReadOnlyList<RequestSpec> requests, ThinkingBudgetConfig tb, int maxNumSeqs)
    {
        var s = TestScenarios.Random(1) with
        {
            Workload = null,
            ReplayRequests = requests,
            Hardware = new HardwareConfig("test-gpu", 1, 1),
            Scheduler = new SchedulerConfig(BatchingPolicy.Continuous, maxNumSeqs, 4096, QueueOrder.Fcfs, PreemptionMode.Recompute, 0, RouterKind.RoundRobin),
            KvCache = new KvCacheConfig(16, 1.0, 0),
            Policies = new PolicyConfig(CompressionConfig.Off, null, tb),
        };
        var result = TestScenarios.Run(s, TestScenarios.SmallGpu(64), check: true);
        TestScenarios.AssertIdentical(result, TestScenarios.Run(s with { Simulation = new SimulationConfig(FastForward: false) }, TestScenarios.SmallGpu(64), check: true));
        return result;
    }
}
