using FsCheck.Xunit;
using RLMServing.Catalog;
using RLMServing.Costs;
using RLMServing.Memory;
using RLMServing.Metrics;
using RLMServing.Policies;
using RLMServing.Scenarios;
using RLMServing.Simulation;
using RLMServing.Workloads;
using Xunit;

namespace RLMServing.Tests.Simulation;

/// <summary>
/// Speculative decoding's draft memory comes out of the KV budget, and each draft step pays a fixed overhead
/// (docs/policies.md, "Speculative decoding"): the KV plan's arithmetic over the real catalog, and the engine's
/// behaviour with both.
/// </summary>
public class DraftMemoryTests
{
    private const int Cases = 200;
    private const double Gib = 1L << 30;

    private static readonly string[] Models =
        ["DeepSeek-R1-Distill-Qwen-1.5B", "DeepSeek-R1-Distill-Qwen-7B", "DeepSeek-R1-Distill-Qwen-14B", "DeepSeek-R1-Distill-Llama-8B", "QwQ-32B", "phi-2"];
    private static readonly string[] Gpus = ["H100-SXM-80G", "A100-SXM-80G", "L40S"];

    /// <summary>A target that fits (model, GPU, TP, block size) drawn from the catalog, and its plan without a draft.</summary>
    private static (ModelArchitecture Model, GpuSpec Gpu, int Tp, KvCacheConfig Kv, SchedulerConfig Sched, KvCachePlan Plan)? Target(Random rng)
    {
        var model = TestScenarios.Catalog.Model(Models[rng.Next(Models.Length)]);
        var gpu = TestScenarios.Catalog.Gpu(Gpus[rng.Next(Gpus.Length)]);
        int tp = new[] { 1, 2, 4 }[rng.Next(3)];
        var kv = new KvCacheConfig(new[] { 1, 16, 32 }[rng.Next(3)], 0.5 + 0.45 * rng.NextDouble(), rng.Next(3) == 0 ? null : 4 * rng.NextDouble());
        var sched = new SchedulerConfig(BatchingPolicy.Continuous, 256, 8192, QueueOrder.Fcfs, PreemptionMode.Recompute, 0, RouterKind.RoundRobin);
        try { return (model, gpu, tp, kv, sched, KvCachePlan.For(model, gpu, tp, kv, sched)); }
        catch (UserInputException) { return null; }
    }

    private static double FreeBytes(KvCachePlan p) => p.UsableBytes - p.WeightBytes - p.ActivationReserveBytes;

    [Property(MaxTest = Cases)]
    public void ReservingDraftMemoryNeverIncreasesKvCapacity(int seed)
    {
        var rng = new Random(seed);
        if (Target(rng) is not { } target) return;
        var (model, gpu, tp, kv, sched, without) = target;
        var draftModel = TestScenarios.Catalog.Model(Models[rng.Next(Models.Length)]);
        var draft = rng.Next(3) switch
        {
            0 => DraftMemory.For(SpeculativeMethod.Draft, model, draftModel, null),
            1 => DraftMemory.For(SpeculativeMethod.Eagle, model, null, null),
            _ => DraftMemory.For(SpeculativeMethod.Eagle, model, null, 8 * rng.NextDouble()),
        };
        KvCachePlan with;
        try { with = KvCachePlan.For(model, gpu, tp, kv, sched, draft); }
        catch (UserInputException e)
        {
            // Refused only when not one block of target + draft KV is left after the fixed reservation.
            Assert.StartsWith("speculative:", e.Message);
            Assert.True(FreeBytes(without) - draft.FixedBytes(tp) < kv.BlockSize * (double)(model.KvBytesPerToken + draft.PerTokenBytes));
            return;
        }
        Assert.True(with.TotalBlocks <= without.TotalBlocks);
        Assert.True(with.CapacityTokens <= without.CapacityTokens);
        // Target KV and everything the draft took fit in what was free, and one more block would not.
        double blockBytes = kv.BlockSize * (double)(model.KvBytesPerToken + draft.PerTokenBytes);
        Assert.True(with.KvCacheBytes + with.SpeculativeReservedBytes <= FreeBytes(without) + 1e-3);
        Assert.True(with.KvCacheBytes + with.SpeculativeReservedBytes + blockBytes > FreeBytes(without));
        Assert.Equal(draft.FixedBytes(tp) + (double)with.CapacityTokens * draft.PerTokenBytes, with.SpeculativeReservedBytes, 6);
    }

    /// <summary>
    /// A fixed reservation of R bytes (draft_memory_gib: no per-token part) leaves floor((free − R) / block bytes)
    /// blocks: the capacity falls by R / block bytes rounded down, or one block more when R straddles a block
    /// boundary of the leftover; by exactly n blocks when R is n whole blocks.
    /// </summary>
    [Property(MaxTest = Cases)]
    public void CapacityFallsByTheReservedBytesOverTheBlockSize(int seed)
    {
        var rng = new Random(seed);
        if (Target(rng) is not { } target) return;
        var (model, gpu, tp, kv, sched, without) = target;
        long blockBytes = (long)kv.BlockSize * model.KvBytesPerToken;
        bool wholeBlocks = rng.Next(2) == 0;
        double reserved = wholeBlocks ? blockBytes * (double)rng.Next(0, without.TotalBlocks) : rng.NextDouble() * FreeBytes(without) * 0.9;
        var with = KvCachePlan.For(model, gpu, tp, kv, sched, new DraftMemory(0, 0, reserved / tp));
        long fall = without.TotalBlocks - with.TotalBlocks;
        long floor = (long)Math.Floor(reserved / blockBytes);
        Assert.Equal((long)Math.Floor((FreeBytes(without) - reserved) / blockBytes), with.TotalBlocks);
        Assert.InRange(fall, floor, floor + 1);
        if (wholeBlocks) Assert.Equal(floor, fall);
        Assert.Equal(reserved, with.SpeculativeReservedBytes, 3);
        Assert.Equal(without.KvBytesPerToken, with.KvBytesPerToken);
    }

    /// <summary>The EAGLE head of EAGLE (Li et al. 2024): one target decoder layer + a 2h x h FC with bias, and one layer of KV.</summary>
    [Fact]
    public void EagleHeadAndDraftModelMemoryFollowTheirFormulas()
    {
        var qwen7 = TestScenarios.Catalog.Model("DeepSeek-R1-Distill-Qwen-7B");
        var qwen1_5 = TestScenarios.Catalog.Model("DeepSeek-R1-Distill-Qwen-1.5B");
        var eagle = DraftMemory.For(SpeculativeMethod.Eagle, qwen7, null, null);
        long layer = 3584L * (28 + 2 * 4) * 128 + (28 + 2 * 4) * 128 + 28L * 128 * 3584 + 3L * 3584 * 18944 + 2 * 3584;
        Assert.Equal((layer + 2L * 3584 * 3584 + 3584) * 2.0, eagle.WeightBytes);
        Assert.Equal(2L * 4 * 128 * 2, eagle.KvBytesPerToken);   // K and V of one layer, 4 KV heads, bf16
        Assert.InRange(eagle.WeightBytes / Gib, 0.45, 0.5);
        var draft = DraftMemory.For(SpeculativeMethod.Draft, qwen7, qwen1_5, null);
        Assert.Equal(qwen1_5.WeightBytes, draft.FixedBytes(1));
        Assert.Equal(qwen1_5.WeightBytes, draft.FixedBytes(4));   // sharded over TP: the replica holds it once
        Assert.Equal(qwen1_5.KvBytesPerToken, draft.PerTokenBytes);
        Assert.True(DraftMemory.For(SpeculativeMethod.Ngram, qwen7, null, null).IsNone);
        var overridden = DraftMemory.For(SpeculativeMethod.Eagle, qwen7, null, 1.5);
        Assert.Equal(3 * Gib, overridden.FixedBytes(2));          // per GPU, times TP
        Assert.Equal(0, overridden.PerTokenBytes);
    }

    [Fact]
    public void ADraftThatDoesNotFitIsOneClearError()
    {
        var qwq = TestScenarios.Catalog.Model("QwQ-32B");
        var h100 = TestScenarios.Catalog.Gpu("H100-SXM-80G");
        var kv = new KvCacheConfig(16, 0.9, null);
        var sched = new SchedulerConfig(BatchingPolicy.Continuous, 256, 8192, QueueOrder.Fcfs, PreemptionMode.Recompute, 0, RouterKind.RoundRobin);
        KvCachePlan.For(qwq, h100, 1, kv, sched, DraftMemory.For(SpeculativeMethod.Draft, qwq, TestScenarios.Catalog.Model("DeepSeek-R1-Distill-Qwen-1.5B"), null));
        var e = Assert.Throws<UserInputException>(() =>
            KvCachePlan.For(qwq, h100, 1, kv, sched, DraftMemory.For(SpeculativeMethod.Draft, qwq, TestScenarios.Catalog.Model("DeepSeek-R1-Distill-Qwen-14B"), null)));
        Assert.StartsWith("speculative: the draft does not fit beside QwQ-32B", e.Message);
        Assert.DoesNotContain("\n", e.Message);
    }

    /// <summary>
    /// One request at a time on one replica: every iteration has the same shape whatever the overhead (acceptance
    /// draws are counter-based per request and step), so each request's TPOT, and the mean, can only grow with the
    /// draft step overhead; and every request still yields exactly its output tokens.
    /// </summary>
    [Property(MaxTest = 60)]
    public void DraftStepOverheadMakesTpotMonotone(int seed)
    {
        var s = TestScenarios.WithRandomPolicies(TestScenarios.Random(seed), seed, combination: 2);
        s = s with
        {
            Hardware = s.Hardware with { Replicas = 1 },
            Workload = s.Workload! with { Arrival = new ClosedLoopArrivals(1, 0) },
        };
        var gpu = TestScenarios.GpuFor(seed);
        var spec = s.PoliciesOrNone.Speculative!;
        var rng = new Random(seed ^ 0x0e7);
        double low = rng.NextDouble(), high = low + 2 * rng.NextDouble();
        SimulationResult RunWith(double overheadMs) =>
            TestScenarios.Run(s with { Policies = s.PoliciesOrNone with { Speculative = spec with { DraftStepOverheadMs = overheadMs } } }, gpu, check: true);
        var a = RunWith(low);
        var b = RunWith(high);
        var outputs = s.Workload!.Generate(s.Seed).ToDictionary(r => r.Id, r => r.OutputTokens);
        Assert.Equal(a.Requests.Select(r => (r.RequestId, r.Status, r.OutputTokens)), b.Requests.Select(r => (r.RequestId, r.Status, r.OutputTokens)));
        foreach (var (ra, rb) in a.Requests.Zip(b.Requests).Where(p => p.First.Status == RequestStatus.Completed))
        {
            Assert.Equal(outputs[ra.RequestId], ra.OutputTokens);
            Assert.True(rb.CompletionTimeS - rb.FirstTokenTimeS >= ra.CompletionTimeS - ra.FirstTokenTimeS - 1e-12,
                $"request {ra.RequestId}: decoding took less time with a larger draft step overhead");
        }
        Assert.True(b.Summary.MeanTpotMs >= a.Summary.MeanTpotMs - 1e-9, $"mean TPOT {b.Summary.MeanTpotMs} at {high} ms < {a.Summary.MeanTpotMs} at {low} ms");
    }

    /// <summary>Through the whole simulator: the summary reports the reservation, and capacity falls by what it took.</summary>
    [Fact]
    public void SummaryReportsWhatTheDraftReserved()
    {
        var gpu = TestScenarios.SmallGpu(2);
        var s = TestScenarios.Random(3) with { Hardware = new HardwareConfig("test-gpu", 1, 1) };
        var off = TestScenarios.Run(s, gpu);
        var spec = new SpeculativeConfig(SpeculativeMethod.Eagle, null, 3, 0.6, 0.1, "test")
        {
            Memory = DraftMemory.For(SpeculativeMethod.Eagle, TestScenarios.Tiny, null, null),
        };
        var on = TestScenarios.Run(s with { Policies = new PolicyConfig(CompressionConfig.Off, spec, null) }, gpu);
        Assert.Null(off.Summary.SpeculativeReservedGib);
        Assert.True(on.Summary.KvCacheCapacityTokens < off.Summary.KvCacheCapacityTokens);
        Assert.Equal(on.KvPlan.SpeculativeReservedBytes / Gib, on.Summary.SpeculativeReservedGib!.Value, 12);
        Assert.True(on.Summary.SpeculativeReservedGib > spec.Memory.WeightBytes / Gib);   // weights plus the head's KV
    }
}
