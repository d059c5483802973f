using FsCheck.Xunit;
using RLMServing.Costs;
using RLMServing.Metrics;
using RLMServing.Policies;
using RLMServing.Scenarios;
using RLMServing.Simulation;
using RLMServing.Workloads;
using Xunit;

namespace RLMServing.Tests.Simulation;

/// <summary>
/// Invariants of the serving policies over random scenarios (every batching policy, tight KV caches) and every
/// combination of KV compression, speculative decoding and thinking budgets. The engine runs with invariant checks
/// on, so each turn it also re-derives: a decoding request's KV = prompt + output − evicted (evicted tokens are never
/// read), compressions never cut below the policy's floor, completed requests produced exactly their tokens.
/// </summary>
public class PolicyPropertyTests
{
    private const int Cases = 120;

    private static (Scenario Scenario, RLMServing.Catalog.GpuSpec Gpu) Draw(int seed, int? combination = null)
    {
        int combo = combination ?? (int)((uint)seed % 8);
        var s = TestScenarios.WithRandomPolicies(TestScenarios.Random(seed), seed, combo);
        return (s, TestScenarios.GpuFor(seed));
    }

    [Property(MaxTest = Cases)]
    public void EveryPolicyCombinationKeepsTheCoreInvariants(int seed)
    {
        var (s, gpu) = Draw(seed);
        var result = TestScenarios.Run(s, gpu, check: true);
        Assert.Equal(s.Workload!.Requests, result.Requests.Count);
        Assert.Equal(result.Requests.Count, result.Requests.Select(r => r.RequestId).Distinct().Count());
        Assert.InRange(result.Summary.PeakKvCacheUsage, 0, 1);
        Assert.All(result.Timeseries, p => Assert.InRange(p.KvBlocksUsed, 0, result.KvPlan.TotalBlocks));
        foreach (var g in result.Timeseries.GroupBy(p => p.Replica))
            Assert.Equal(g.Select(p => p.TimeS).Order().ToList(), g.Select(p => p.TimeS).ToList());
        foreach (var r in result.Requests.Where(r => r.Status == RequestStatus.Completed))
        {
            Assert.True(r.ArrivalTimeS <= r.FirstScheduledTimeS);
            Assert.True(r.FirstScheduledTimeS < r.FirstTokenTimeS);
            Assert.True(r.FirstTokenTimeS <= r.FirstAnswerTokenTimeS);
            Assert.True(r.FirstAnswerTokenTimeS <= r.CompletionTimeS);
        }
    }

    [Property(MaxTest = Cases)]
    public void FastForwardEqualsSteppingWithPolicies(int seed)
    {
        var (s, gpu) = Draw(seed);
        var fast = TestScenarios.Run(s, gpu, check: false);
        var step = TestScenarios.Run(s with { Simulation = new SimulationConfig(FastForward: false) }, gpu, check: false);
        TestScenarios.AssertIdentical(step, fast);
    }

    /// <summary>
    /// With a cost model that prices the decode batch's longest and shortest KV, the engine tracks them (heaps of
    /// anchor offsets in fast-forward, a scan when stepping); both modes must price every iteration alike, and the
    /// invariant checks compare the heaps with the members each turn.
    /// </summary>
    [Property(MaxTest = Cases)]
    public void FastForwardEqualsSteppingWhenTheCostModelPricesKvSpread(int seed)
    {
        var (s, gpu) = Draw(seed);
        SimulationResult Run(Scenario sc) =>
            Simulator.Run(sc, TestScenarios.Tiny, gpu, new SpreadPricedCost(CostModelFactory.Build(sc, TestScenarios.Tiny, gpu, sc.Hardware.TensorParallel, TestScenarios.Catalog)), checkInvariants: true);
        var fast = Run(s);
        var step = Run(s with { Simulation = new SimulationConfig(FastForward: false) });
        TestScenarios.AssertIdentical(step, fast);
    }

    /// <summary>Adds a price per KV entry of the longest and of the shortest decoding request; refuses a decode batch without them.</summary>
    private sealed class SpreadPricedCost(ICostModel inner) : ICostModel
    {
        public double PeakFlops => inner.PeakFlops;
        public double PeakBandwidth => inner.PeakBandwidth;
        public double FixedStepS => inner.FixedStepS;
        public bool UsesKvSpread => true;

        public IterationCost Iteration(in BatchShape shape)
        {
            var c = inner.Iteration(shape);
            return shape.DecodeCount == 0 ? c : c with { TimeS = c.TimeS + Extra(shape.DecodeCount, shape.DecodeKvSum, shape.DecodeKvSpread) };
        }

        public IterationCost Decode(int decodeCount, long kvSum, KvSpread spread = default)
        {
            var c = inner.Decode(decodeCount, kvSum, spread);
            return decodeCount == 0 ? c : c with { TimeS = c.TimeS + Extra(decodeCount, kvSum, spread) };
        }

        private static double Extra(int decodes, long kvSum, KvSpread spread)
        {
            if (!spread.Known || spread.Shortest > spread.Longest || spread.Longest * decodes < kvSum || spread.Shortest * decodes > kvSum)
                throw new InvalidOperationException($"decode batch of {decodes} (KV sum {kvSum}) priced with spread {spread}");
            return spread.Longest * 1e-7 + spread.Shortest * 3e-8;
        }
    }

    [Property(MaxTest = 40)]
    public void SameSeedGivesIdenticalOutputWithPolicies(int seed)
    {
        var (s, gpu) = Draw(seed, combination: 7);
        var a = TestScenarios.Run(s, gpu, check: false);
        TestScenarios.AssertIdentical(a, TestScenarios.Run(s, gpu, check: false));
    }

    /// <summary>
    /// Speculative decoding emits several tokens per step but never more than a request asked for: with invariant
    /// checks on, a completion with any other token count throws; and the summary's accepted length stays in [1, k + 1].
    /// </summary>
    [Property(MaxTest = Cases)]
    public void SpeculativeDecodingYieldsExactlyTheRequestedTokens(int seed)
    {
        var (s, gpu) = Draw(seed, combination: 2);
        var specs = s.Workload!.Generate(s.Seed).ToDictionary(r => r.Id);
        var result = TestScenarios.Run(s, gpu, check: true);
        foreach (var r in result.Requests.Where(r => r.Status == RequestStatus.Completed))
            Assert.Equal(specs[r.RequestId].OutputTokens, r.OutputTokens);
        int k = s.PoliciesOrNone.Speculative!.NumSpeculativeTokens;
        if (result.Summary.Completed > 0 && result.Summary.MeanAcceptedTokensPerStep is { } m and > 0)
            Assert.InRange(m, 1, k + 1);
        Assert.InRange(result.Summary.SpecDecodeAcceptanceRate!.Value, 0, 1);
    }

    /// <summary>
    /// One request at a time (one closed-loop client, one replica): compression can only lower the KV a request
    /// holds at each point of its life, so the peak never rises; and no decode step reads more KV than the prompt,
    /// the policy's output budget and one re-compression interval.
    /// </summary>
    [Property(MaxTest = Cases)]
    public void CompressionNeverRaisesMemoryAndNeverReadsEvictedTokens(int seed)
    {
        var (s, gpu) = Draw(seed, combination: 1);
        s = s with
        {
            Hardware = s.Hardware with { Replicas = 1 },
            Workload = s.Workload! with { Arrival = new ClosedLoopArrivals(1, 0) },
        };
        var c = s.PoliciesOrNone.Compression;
        var without = TestScenarios.Run(s with { Policies = null }, gpu, check: true);
        var recorder = new RecordingCost(new RooflineCostModel(TestScenarios.Tiny, gpu, 1, 0.6, 0.85, 1.0, 10));
        var with = Simulator.Run(s, TestScenarios.Tiny, gpu, recorder, checkInvariants: true);
        Assert.True(with.Summary.PeakKvCacheUsage <= without.Summary.PeakKvCacheUsage,
            $"peak KV {with.Summary.PeakKvCacheUsage} with {c.Policy} > {without.Summary.PeakKvCacheUsage} without");
        Assert.True(with.Summary.PeakKvCacheGib <= with.Summary.PeakKvCacheUncompressedGib + 1e-12);
        Assert.True(with.Summary.MeanKvCacheGib <= with.Summary.MeanKvCacheUncompressedGib + 1e-12);
        var specs = s.Workload!.Generate(s.Seed);
        long maxPrompt = specs.Max(r => (long)r.PromptTokens);
        long maxOutput = specs.Max(r => (long)r.OutputTokens);
        long outputCap = c.Policy == CompressionPolicy.Ratio ? maxOutput : c.BudgetTokens + c.IntervalSteps;
        // Re-prefills after a recompute rebuild the whole sequence, compressed again at the next check.
        if (with.Summary.Preemptions == 0)
            Assert.All(recorder.DecodeKvSums, kv => Assert.True(kv <= maxPrompt + Math.Min(maxOutput, outputCap) + 1, $"decode read {kv} KV entries"));
        if (with.Summary.KvTokensEvicted > 0) Assert.NotNull(with.Summary.EstimatedAccuracyRetention);
    }

    /// <summary>Records the KV each decode-only iteration reads (one request at a time: that request's KV + 1).</summary>
    private sealed class RecordingCost(ICostModel inner) : ICostModel
    {
        public List<long> DecodeKvSums { get; } = new();
        public double PeakFlops => inner.PeakFlops;
        public double PeakBandwidth => inner.PeakBandwidth;
        public double FixedStepS => inner.FixedStepS;

        public IterationCost Iteration(in BatchShape shape)
        {
            if (shape.DecodeCount > 0) DecodeKvSums.Add(shape.DecodeKvSum);
            return inner.Iteration(shape);
        }

        public IterationCost Decode(int decodeCount, long kvSum, KvSpread spread = default)
        {
            DecodeKvSums.Add(kvSum);
            return inner.Decode(decodeCount, kvSum, spread);
        }
    }

    [Property(MaxTest = Cases)]
    public void ThinkingBudgetsCapThinkingAndKeepAnswers(int seed)
    {
        var (s, gpu) = Draw(seed, combination: 4);
        var tb = s.PoliciesOrNone.ThinkingBudget!;
        var specs = s.Workload!.Generate(s.Seed).ToDictionary(r => r.Id);
        var result = TestScenarios.Run(s, gpu, check: true);
        foreach (var r in result.Requests.Where(r => r.Status == RequestStatus.Completed))
        {
            var spec = specs[r.RequestId];
            Assert.True(r.ThinkingTokens <= Math.Min(spec.ThinkingTokens, tb.MaxThinkingTokens!.Value));
            Assert.Equal(spec.AnswerTokens, r.OutputTokens - r.ThinkingTokens);
            if (tb.Policy == ThinkingBudgetPolicy.Static) Assert.Equal(Math.Min(spec.ThinkingTokens, tb.MaxThinkingTokens.Value), r.ThinkingTokens);
            if (r.ThinkingTokens < spec.ThinkingTokens) Assert.True(r.ThinkingTruncated);
        }
        if (result.Summary.Completed > 0) Assert.InRange(result.Summary.EstimatedAccuracy!.Value, 0.2, 0.6);
    }
}
