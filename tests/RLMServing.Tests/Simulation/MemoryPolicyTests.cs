using FsCheck.Xunit;
using RLMServing.Metrics;
using RLMServing.Scenarios;
using RLMServing.Simulation;
using RLMServing.Workloads;
using Xunit;

namespace RLMServing.Tests.Simulation;

/// <summary>Prefix caching, swap preemption and the watermark, alone and combined with every other policy.</summary>
public class MemoryPolicyTests
{
    /// <summary>
    /// Every policy combination keeps the simulator's core invariants: the engine re-derives block holdings
    /// (private + shared), prefix-cache references, cached-free blocks and swap space every turn (and throws);
    /// every request ends once, with exactly its tokens, timestamps in order; with one replica group or two unlike ones.
    /// </summary>
    [Property(MaxTest = 150)]
    public void CoreInvariantsHoldForEveryCombination(int seed)
    {
        var s = TestScenarios.RandomCombination(seed);
        var specs = s.ReplayRequests!.ToDictionary(r => r.Id);
        var gpu = TestScenarios.GpuFor(seed);
        // Half the cases add a heterogeneous second group: another GPU size and a different scheduler.
        var result = seed % 2 == 0
            ? TestScenarios.Run(s, gpu, check: true)
            : TestScenarios.RunGroups(s, [TestScenarios.Group(s, gpu), TestScenarios.Group(s, TestScenarios.SmallGpu(4)) with
                { Name = "other", Replicas = 1, Scheduler = s.Scheduler with { Batching = BatchingPolicy.Continuous, MaxNumSeqs = 8, MaxNumBatchedTokens = 512 } }], check: true);
        Assert.Equal(specs.Count, result.Requests.Count);
        foreach (var r in result.Requests.Where(r => r.Status == RequestStatus.Completed))
        {
            Assert.Equal(specs[r.RequestId].OutputTokens, r.OutputTokens);
            Assert.True(r.ArrivalTimeS <= r.FirstScheduledTimeS && r.FirstScheduledTimeS < r.FirstTokenTimeS
                && r.FirstTokenTimeS <= r.FirstAnswerTokenTimeS && r.FirstAnswerTokenTimeS <= r.CompletionTimeS, $"request {r.RequestId}: timestamps out of order");
        }
        Assert.InRange(result.Summary.PeakKvCacheUsage, 0, 1);
        Assert.Equal(s.KvCache.Memory.PrefixCaching, result.Summary.PrefixCacheHitRate is not null);
        if (s.Scheduler.Preemption == PreemptionMode.Recompute) Assert.Equal(0, result.Summary.SwapOuts);
        Assert.True(result.Summary.SwapOuts + result.Summary.SwapSpaceExhausted <= result.Summary.Preemptions + result.Summary.SwapSpaceExhausted);
    }

    [Property(MaxTest = 100)]
    public void FastForwardEqualsSteppingWithEveryPolicy(int seed)
    {
        var s = TestScenarios.RandomCombination(seed);
        var gpu = TestScenarios.GpuFor(seed);
        var fast = TestScenarios.Run(s, gpu, check: false);
        var step = TestScenarios.Run(s with { Simulation = new SimulationConfig(FastForward: false) }, gpu, check: false);
        TestScenarios.AssertIdentical(step, fast);
    }

    /// <summary>A request's cache hit never exceeds the prefix it shares with some other request (or itself, after a preemption).</summary>
    [Property(MaxTest = 150)]
    public void PrefixCacheHitsNeverExceedSharedPrefixLength(int seed)
    {
        var s = TestScenarios.RandomCombination(seed);
        s = s with { KvCache = s.KvCache with { Memory = s.KvCache.Memory with { PrefixCaching = true } } };
        var specs = s.ReplayRequests!;
        var result = TestScenarios.Run(s, TestScenarios.GpuFor(seed), check: true);
        foreach (var r in result.Requests)
        {
            var spec = specs[(int)r.RequestId];
            long bound = r.Preemptions > 0 ? spec.PrefixCoveredTokens : specs.Where(q => q.Id != spec.Id).Select(q => SharedTokens(spec, q)).DefaultIfEmpty(0).Max();
            Assert.True(r.CachedPromptTokens <= bound, $"request {r.RequestId}: {r.CachedPromptTokens} cached tokens, shares at most {bound}");
            Assert.True(r.CachedPromptTokens < spec.PromptTokens + (r.Preemptions > 0 ? spec.OutputTokens : 0));
        }
    }

    /// <summary>Tokens two requests share by their prefix identities: the leading units with equal ids, within both coverages.</summary>
    private static long SharedTokens(RequestSpec a, RequestSpec b)
    {
        if (a.PrefixHashes is null || b.PrefixHashes is null || a.PrefixHashTokens != b.PrefixHashTokens) return 0;
        int m = 0;
        while (m < a.PrefixHashes.Length && m < b.PrefixHashes.Length && a.PrefixHashes[m] == b.PrefixHashes[m]) m++;
        return Math.Min((long)m * a.PrefixHashTokens, Math.Min(a.PrefixCoveredTokens, b.PrefixCoveredTokens));
    }

    [Fact]
    public void ASharedSystemPromptIsServedFromTheCache()
    {
        var requests = Enumerable.Range(0, 20).Select(i => new RequestSpec(i, i * 0.5, 600, 0, 20) { PrefixHashes = [7], PrefixHashTokens = 512 }).ToList();
        var s = OneReplica(requests, prefixCaching: true);
        var cached = TestScenarios.Run(s, TestScenarios.SmallGpu(64));
        var plain = TestScenarios.Run(OneReplica(requests, prefixCaching: false), TestScenarios.SmallGpu(64));
        Assert.Equal(0, cached.Requests[0].CachedPromptTokens);
        Assert.All(cached.Requests.Skip(1), r => Assert.Equal(512, r.CachedPromptTokens));
        Assert.Equal(19.0 * 512 / (20 * 600), cached.Summary.PrefixCacheHitRate!.Value, 9);
        Assert.Null(plain.Summary.PrefixCacheHitRate);
        Assert.True(cached.Summary.MeanTtftMs < plain.Summary.MeanTtftMs);
    }

    [Fact]
    public void AMultiTurnSessionReadsItsEarlierTurnsFromTheCache()
    {
        // Turn 2's prompt is turn 1's prompt (100) + output (60) + 40 new tokens.
        var t1 = new RequestSpec(0, 0, 100, 0, 60) { PrefixHashes = [42], PrefixHashTokens = int.MaxValue };
        var t2 = new RequestSpec(1, 5, 200, 0, 10) { PrefixHashes = [42], PrefixHashTokens = int.MaxValue };
        var result = TestScenarios.Run(OneReplica([t1, t2], prefixCaching: true), TestScenarios.SmallGpu(64));
        // Turn 1's context (100 + 60 = 160 tokens; 159 entered the KV cache) leaves 9 full 16-token blocks.
        Assert.Equal(144, result.Requests[1].CachedPromptTokens);
    }

    [Fact]
    public void CachedBlocksAreEvictedLeastRecentlyUsedFirst()
    {
        // About 75 blocks of 16 tokens: two 512-token prefixes (32 blocks each) stay cached, a third evicts.
        var gpu = TestScenarios.SmallGpu(1);
        var probe = OneReplica([], prefixCaching: true);
        Assert.InRange(RLMServing.Memory.KvCachePlan.For(TestScenarios.Tiny, gpu, 1, probe.KvCache, probe.Scheduler).TotalBlocks, 66, 95);
        IReadOnlyList<RequestSpec> Prefixes(params long[] ids) =>
            ids.Select((p, i) => new RequestSpec(i, i * 10, 512, 0, 2) { PrefixHashes = [p], PrefixHashTokens = 512 }).ToList();
        // Prefix 1 was released first, so the third prefix evicted (the tail of) prefix 1 and none of prefix 2.
        var recent = TestScenarios.Run(OneReplica(Prefixes(1, 2, 3, 2), prefixCaching: true), gpu);
        Assert.Equal(496, recent.Requests[3].CachedPromptTokens);   // 31 of 32 blocks: the last prompt token is always computed
        var oldest = TestScenarios.Run(OneReplica(Prefixes(1, 2, 3, 1), prefixCaching: true), gpu);
        Assert.InRange(oldest.Requests[3].CachedPromptTokens, 0, 495);
    }

    /// <summary>Swap conserves blocks: the engine checks host memory against the swapped requests every turn; at the end nothing is left swapped.</summary>
    [Property(MaxTest = 100)]
    public void SwapConservesBlocks(int seed)
    {
        var s = TestScenarios.RandomCombination(seed);
        s = s with
        {
            Scheduler = s.Scheduler with { Preemption = PreemptionMode.Swap },
            KvCache = s.KvCache with { Memory = s.KvCache.Memory with { SwapSpaceGib = 0.001 * Math.Abs(seed % 3) } },
        };
        var result = TestScenarios.Run(s, TestScenarios.GpuFor(seed), check: true);
        Assert.True(result.Summary.SwapOuts <= result.Summary.Preemptions);
        Assert.Equal(result.Requests.Sum(r => (long)r.Preemptions), result.Summary.Preemptions);
    }

    [Fact]
    public void SwapResumesWithoutRecomputingAndFallsBackWhenSwapSpaceIsFull()
    {
        var requests = Enumerable.Range(0, 12).Select(i => new RequestSpec(i, 0, 200, 0, 600)).ToList();
        var swap = OneReplica(requests, prefixCaching: false) with { Scheduler = OneReplica(requests, false).Scheduler with { Preemption = PreemptionMode.Swap } };
        var gpu = TestScenarios.SmallGpu(2);
        var withSwap = TestScenarios.Run(swap, gpu);
        var recompute = TestScenarios.Run(OneReplica(requests, prefixCaching: false), gpu);
        Assert.True(recompute.Summary.Preemptions > 0);
        Assert.True(withSwap.Summary.SwapOuts > 0);
        Assert.Equal(0, withSwap.Summary.SwapSpaceExhausted);
        var noSpace = swap with { KvCache = swap.KvCache with { Memory = swap.KvCache.Memory with { SwapSpaceGib = 0 } } };
        var fallback = TestScenarios.Run(noSpace, gpu);
        Assert.Equal(0, fallback.Summary.SwapOuts);
        Assert.Equal(fallback.Summary.Preemptions, fallback.Summary.SwapSpaceExhausted);
        // With no swap space every preemption is a recompute: the same run as recompute preemption.
        Assert.Equal(recompute.Requests, fallback.Requests);
    }

    [Fact]
    public void VllmV1PreemptsTheLatestAdmittedRequest_NeverTheOldest()
    {
        // vLLM V1 (vllm/v1/core/sched/scheduler.py) takes its victim from the end of the running list: the request
        // admitted last. Twelve equal requests queued in id order: the oldest is never the victim, the newest are.
        var requests = Enumerable.Range(0, 12).Select(i => new RequestSpec(i, 0, 200, 0, 600)).ToList();
        var s = OneReplica(requests, prefixCaching: false);
        var v1 = s with { Scheduler = s.Scheduler with { Batching = BatchingPolicy.VllmV1 } };
        var result = TestScenarios.Run(v1, TestScenarios.SmallGpu(2));
        Assert.True(result.Summary.Preemptions > 0);
        var byId = result.Requests.OrderBy(r => r.RequestId).ToList();
        Assert.Equal(0, byId[0].Preemptions);
        Assert.True(byId.Take(6).Sum(r => r.Preemptions) < byId.Skip(6).Sum(r => r.Preemptions),
            string.Join(",", byId.Select(r => r.Preemptions)));
    }

    [Fact]
    public void AWatermarkKeepsBlocksFreeForDecodes()
    {
        var requests = Enumerable.Range(0, 30).Select(i => new RequestSpec(i, 0, 100, 0, 400)).ToList();
        var gpu = TestScenarios.SmallGpu(2);
        var none = TestScenarios.Run(OneReplica(requests, false), gpu);
        var s = OneReplica(requests, false);
        var watermark = TestScenarios.Run(s with { KvCache = s.KvCache with { Memory = s.KvCache.Memory with { Watermark = 0.3 } } }, gpu);
        Assert.True(watermark.Summary.Preemptions < none.Summary.Preemptions, $"{watermark.Summary.Preemptions} vs {none.Summary.Preemptions}");
    }

    private static Scenario OneReplica(IReadOnlyList<RequestSpec> requests, bool prefixCaching)
    {
        var s = TestScenarios.Random(1);
        return s with
        {
            Hardware = new HardwareConfig("test-gpu", 1, 1),
            Workload = null,
            ReplayRequests = requests,
            Scheduler = new SchedulerConfig(BatchingPolicy.Continuous, 64, 4096, QueueOrder.Fcfs, PreemptionMode.Recompute, 0, RouterKind.RoundRobin),
            KvCache = new KvCacheConfig(16, 1.0, 0) { Memory = MemoryPolicyConfig.Default with { PrefixCaching = prefixCaching } },
        };
    }
}
