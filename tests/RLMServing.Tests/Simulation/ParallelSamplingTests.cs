using FsCheck.Xunit;
using RLMServing.Metrics;
using RLMServing.Scenarios;
using RLMServing.Workloads;
using Xunit;

namespace RLMServing.Tests.Simulation;

/// <summary>Parallel sampling (workload.n): n samples per prompt share the prompt's KV on one replica.</summary>
public class ParallelSamplingTests
{
    /// <summary>
    /// A random scenario with n = 1..4 samples per prompt, a random router, memory policies, sometimes a shared
    /// system prompt, KV compression and speculative decoding (closed-loop arrivals become Poisson: clients send one
    /// request at a time).
    /// </summary>
    private static Scenario Sampled(int seed, out int n)
    {
        var s = TestScenarios.RandomCombination(seed);
        var rng = new Random(seed ^ 0x5a3b1e);
        n = 1 + rng.Next(4);
        var workload = s.Workload! with { Samples = n };
        if (workload.Arrival.IsClosed) workload = workload with { Arrival = new PoissonArrivals(1 + rng.Next(200)) };
        s = TestScenarios.WithRandomPolicies(s, seed, rng.Next(4)) with
        {
            Workload = workload,
            ReplayRequests = null,
            SystemPrompt = rng.Next(3) == 0 ? new SystemPromptConfig(1 + rng.Next(64), 1 + rng.Next(3)) : null,
        };
        return s;
    }

    /// <summary>
    /// The core invariants hold (the engine re-derives private and shared blocks, prefix-cache references and the
    /// samples held back every turn); every sample ends once with exactly its requested output tokens, on its prompt's
    /// replica, and is admitted only after its prompt's first sample has prefilled the prompt (prefilled once).
    /// </summary>
    [Property(MaxTest = 120)]
    public void SamplesKeepTheCoreInvariants(int seed)
    {
        var s = Sampled(seed, out int n);
        var specs = s.Requests().ToDictionary(r => r.Id);
        var result = TestScenarios.Run(s, TestScenarios.GpuFor(seed), check: true);
        Assert.Equal(specs.Count, result.Requests.Count);
        var byId = result.Requests.ToDictionary(r => r.RequestId);
        foreach (var r in result.Requests)
        {
            var spec = specs[r.RequestId];
            Assert.Equal(spec.PromptId, r.PromptId);
            Assert.Equal(spec.SampleIndex, r.SampleIndex);
            if (r.Status == RequestStatus.Completed) Assert.Equal(spec.OutputTokens, r.OutputTokens);
            if (r.SampleIndex == 0) continue;
            var first = byId[r.RequestId - r.SampleIndex];
            Assert.Equal(first.Replica, r.Replica);
            if (first.Status == RequestStatus.Completed && r.Status == RequestStatus.Completed)
                Assert.True(r.FirstScheduledTimeS >= first.FirstTokenTimeS, $"sample {r.RequestId} was admitted before its prompt was prefilled");
        }
        Assert.Equal(n > 1 ? n : null, result.Summary.ParallelSamples);
        if (n == 1) Assert.All(result.Requests, r => Assert.Null(r.PromptId));
    }

    [Property(MaxTest = 80)]
    public void FastForwardEqualsSteppingWithSamples(int seed)
    {
        var s = Sampled(seed, out _);
        var gpu = TestScenarios.GpuFor(seed);
        var fast = TestScenarios.Run(s, gpu, check: false);
        var step = TestScenarios.Run(s with { Simulation = new SimulationConfig(FastForward: false) }, gpu, check: false);
        TestScenarios.AssertIdentical(step, fast);
    }

    /// <summary>
    /// One prompt, n samples, room for all: the prompt is prefilled once, every other sample reads its full blocks
    /// (all but the last token's block) from the shared KV, and the KV held never exceeds the prompt's blocks plus
    /// each sample's own blocks, well below n private copies.
    /// </summary>
    [Property(MaxTest = 60)]
    public void SamplesHoldThePromptOnceAndTheirOwnBlocks(int seed)
    {
        var rng = new Random(seed);
        int n = 2 + rng.Next(6), prompt = 1 + rng.Next(400), block = new[] { 1, 4, 16 }[rng.Next(3)];
        var s = TestScenarios.Random(seed);
        var workload = new SyntheticWorkload(1, new PoissonArrivals(1), new UniformTokens(prompt, prompt),
            new UniformTokens(1, 300), 0, null, null, 4096, null, null) { Samples = n };
        s = s with
        {
            Workload = workload,
            ReplayRequests = null,
            Hardware = s.Hardware with { Replicas = 1 },
            Scheduler = s.Scheduler with { MaxNumSeqs = 16, MaxNumBatchedTokens = 4096, BatchTimeoutMs = 0 },
            KvCache = s.KvCache with { BlockSize = block },
        };
        var specs = s.Requests();
        var result = TestScenarios.Run(s, TestScenarios.SmallGpu(8), check: true);
        Assert.All(result.Requests, r => Assert.Equal(0, r.Preemptions));
        int shared = (prompt - 1) / block * block;
        foreach (var r in result.Requests.Where(r => r.SampleIndex > 0)) Assert.Equal(shared, r.CachedPromptTokens);
        Assert.Equal((long)shared * (n - 1), result.Summary.SharedPromptTokens);

        long Blocks(long tokens) => (tokens + block - 1) / block;
        // Each sample recomputes the prompt's last token, so its own blocks start at the block holding it.
        long bound = Blocks(prompt) + specs.Sum(q => Blocks(prompt + q.OutputTokens - 1) - (prompt - 1) / block);
        long peak = (long)Math.Round(result.Summary.PeakKvCacheUsage * result.KvPlan.TotalBlocks);
        Assert.True(peak <= bound, $"peak {peak} blocks, prompt + own blocks {bound}");
        long unshared = specs.Sum(q => Blocks(prompt + q.OutputTokens - 1));
        if (prompt >= 3 * block) Assert.True(peak < unshared, $"peak {peak} blocks, no less than {unshared} unshared");
    }

    /// <summary>n = 1 draws, ids and columns are exactly those of a run without the key; n &gt; 1 keeps the first sample's draws.</summary>
    [Fact]
    public void OneSampleIsTheWorkloadWithoutParallelSampling()
    {
        var s = TestScenarios.Random(7);
        var without = s.Workload!.Generate(7);
        var one = (s.Workload with { Samples = 1 }).Generate(7);
        Assert.Equal(without, one);
        Assert.All(one, r => Assert.Null(r.PromptId));
        var three = (s.Workload with { Samples = 3 }).Generate(7);
        Assert.Equal(3 * without.Count, three.Count);
        for (int i = 0; i < without.Count; i++)
        {
            var first = three[3 * i];
            Assert.Equal(without[i] with { Id = 3 * i, PromptId = i }, first);
            Assert.All(three.Skip(3 * i).Take(3), q => Assert.Equal((without[i].ArrivalTimeS, without[i].PromptTokens, (long?)i), (q.ArrivalTimeS, q.PromptTokens, q.PromptId)));
        }
        Assert.NotEqual(three.Where(q => q.SampleIndex == 1).Select(q => q.OutputTokens), without.Select(q => q.OutputTokens));
    }
}
