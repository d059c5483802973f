using System.Text.Json;
using FsCheck.Xunit;
using RLMServing.IO.Results;
using RLMServing.Metrics;
using RLMServing.Scenarios;
using Xunit;

namespace RLMServing.Tests.Simulation;

/// <summary>Invariants over random scenarios and every batching policy (FsCheck draws the seeds).</summary>
public class SimulatorPropertyTests
{
    private const int Cases = 150;

    [Property(MaxTest = Cases)]
    public void EveryRequestEndsCompletedOrRejectedOnce(int seed)
    {
        var s = TestScenarios.Random(seed);
        var result = TestScenarios.Run(s, TestScenarios.GpuFor(seed));
        Assert.Equal(s.Workload!.Requests, result.Requests.Count);
        Assert.Equal(result.Requests.Count, result.Requests.Select(r => r.RequestId).Distinct().Count());
        Assert.All(result.Requests, r => Assert.True(r.Status is RequestStatus.Completed or RequestStatus.Rejected));
        Assert.All(result.Requests.Where(r => r.Status == RequestStatus.Rejected), r => Assert.NotNull(r.RejectReason));
    }

    /// <summary>The engine re-derives allocated + free = total and per-request holdings every turn; a violation throws.</summary>
    [Property(MaxTest = Cases)]
    public void KvBlocksNeverExceedCapacity(int seed)
    {
        var result = TestScenarios.Run(TestScenarios.Random(seed), TestScenarios.GpuFor(seed), check: true);
        Assert.InRange(result.Summary.PeakKvCacheUsage, 0, 1);
        Assert.All(result.Timeseries, p => Assert.InRange(p.KvBlocksUsed, 0, result.KvPlan.TotalBlocks));
    }

    [Property(MaxTest = Cases)]
    public void RequestTimestampsAreOrdered(int seed)
    {
        var result = TestScenarios.Run(TestScenarios.Random(seed), TestScenarios.GpuFor(seed));
        foreach (var r in result.Requests.Where(r => r.Status == RequestStatus.Completed))
        {
            Assert.True(r.ArrivalTimeS <= r.FirstScheduledTimeS, $"request {r.RequestId}: scheduled before arrival");
            Assert.True(r.FirstScheduledTimeS < r.FirstTokenTimeS, $"request {r.RequestId}: first token before scheduling");
            Assert.True(r.FirstTokenTimeS <= r.FirstAnswerTokenTimeS, $"request {r.RequestId}: answer before first token");
            Assert.True(r.FirstAnswerTokenTimeS <= r.CompletionTimeS, $"request {r.RequestId}: completion before answer");
        }
    }

    [Property(MaxTest = Cases)]
    public void ProducedTokensEqualRequested(int seed)
    {
        var s = TestScenarios.Random(seed);
        var specs = s.Workload!.Generate(s.Seed).ToDictionary(r => r.Id);
        var result = TestScenarios.Run(s, TestScenarios.GpuFor(seed));
        foreach (var r in result.Requests.Where(r => r.Status == RequestStatus.Completed))
        {
            Assert.Equal(specs[r.RequestId].OutputTokens, r.OutputTokens);
            Assert.Equal(specs[r.RequestId].ThinkingTokens, r.ThinkingTokens);
        }
        Assert.Equal(result.Requests.Where(r => r.Status == RequestStatus.Completed).Sum(r => (long)r.OutputTokens), result.Summary.TotalOutputTokens);
    }

    [Property(MaxTest = Cases)]
    public void ClockNeverGoesBack(int seed)
    {
        // The engine checks its own clock each turn; the time series it emits must be ordered per replica too.
        var result = TestScenarios.Run(TestScenarios.Random(seed), TestScenarios.GpuFor(seed), check: true);
        foreach (var g in result.Timeseries.GroupBy(p => p.Replica))
        {
            var times = g.Select(p => p.TimeS).ToList();
            Assert.Equal(times.Order().ToList(), times);
        }
    }

    [Property(MaxTest = Cases)]
    public void FastForwardEqualsStepping(int seed)
    {
        var s = TestScenarios.Random(seed);
        var gpu = TestScenarios.GpuFor(seed);
        var fast = TestScenarios.Run(s, gpu, check: false);
        var step = TestScenarios.Run(s with { Simulation = new SimulationConfig(FastForward: false) }, gpu, check: false);
        TestScenarios.AssertIdentical(step, fast);
    }

    [Property(MaxTest = 50)]
    public void SameSeedGivesIdenticalOutput(int seed)
    {
        var s = TestScenarios.Random(seed);
        var gpu = TestScenarios.GpuFor(seed);
        var a = TestScenarios.Run(s, gpu, check: false);
        var b = TestScenarios.Run(s, gpu, check: false);
        Assert.Equal(a.Requests, b.Requests);
        Assert.Equal(JsonSerializer.Serialize(a.Summary, ResultWriter.Json), JsonSerializer.Serialize(b.Summary, ResultWriter.Json));
    }

    /// <summary>
    /// Static batching, checked from the outside: with one replica and a cache large enough that nothing is
    /// preempted, no request is first scheduled while an earlier batch still has a member running.
    /// (The engine also throws if it ever admits mid-batch.)
    /// </summary>
    [Property(MaxTest = Cases)]
    public void StaticBatchingAdmitsNothingMidBatch(int seed)
    {
        var s = TestScenarios.Random(seed);
        s = s with
        {
            Hardware = s.Hardware with { Replicas = 1 },
            Scheduler = s.Scheduler with { Batching = BatchingPolicy.Static },
        };
        var result = TestScenarios.Run(s, TestScenarios.SmallGpu(64));
        Assert.Equal(0, result.Summary.Preemptions);
        var batches = result.Requests.Where(r => r.FirstScheduledTimeS is not null)
            .GroupBy(r => r.FirstScheduledTimeS!.Value).OrderBy(g => g.Key).ToList();
        for (int i = 1; i < batches.Count; i++)
        {
            double previousEnd = batches[i - 1].Max(r => r.CompletionTimeS!.Value);
            Assert.True(batches[i].Key >= previousEnd, $"batch at {batches[i].Key} started before the batch at {batches[i - 1].Key} ended at {previousEnd}");
            Assert.True(batches[i].Count() <= s.Scheduler.MaxNumSeqs);
        }
    }
}
