using RLMServing.Costs;
using RLMServing.Memory;
using RLMServing.Scenarios;
using Xunit;

namespace RLMServing.Tests.Simulation;

/// <summary>The roofline formula and the KV memory plan, checked against hand calculations.</summary>
public class CostModelTests
{
    private static readonly RLMServing.Catalog.ModelArchitecture Qwen7B = TestScenarios.Catalog.Model("DeepSeek-R1-Distill-Qwen-7B");
    private static readonly RLMServing.Catalog.GpuSpec H100 = TestScenarios.Catalog.Gpu("H100-SXM-80G");

    private static RooflineCostModel Model(int tp = 1, double overheadMs = 0) => new(Qwen7B, H100, tp, 1.0, 1.0, overheadMs, 0);

    [Fact]
    public void SingleDecodeIsBoundByReadingTheWeights()
    {
        // Batch 1, short context: time = weight bytes / bandwidth (the linear part) + KV bytes / bandwidth.
        var t = Model().Decode(1, 100).TimeS;
        double layersAndHead = (Qwen7B.Layers * (double)Qwen7B.ParamsPerLayer + (double)Qwen7B.Vocab * Qwen7B.Hidden) * 2 / 3.35e12;
        double kv = (100 + 1) * (double)Qwen7B.KvBytesPerToken / 3.35e12;
        Assert.Equal(layersAndHead + kv, t, 9);
        Assert.InRange(t * 1000, 4.0, 5.0); // ~4.5 ms: 15 GB of bf16 weights at 3.35 TB/s
    }

    [Fact]
    public void DecodeTimeGrowsWithTheSumOfKvLengthsNotTheMean()
    {
        var m = Model();
        // Same batch, same total context: same time, however it is split between requests.
        Assert.Equal(m.Decode(8, 80_000).TimeS, m.Iteration(BatchShape.DecodeOnly(8, 80_000)).TimeS, 12);
        Assert.True(m.Decode(64, 64 * 32_000).TimeS > m.Decode(64, 64 * 1_000).TimeS * 1.5);
    }

    [Fact]
    public void LargePrefillIsComputeBound()
    {
        var m = Model();
        var shape = new BatchShape(new[] { new PrefillChunk(8192, 0, true) }, 0, 0);
        var cost = m.Iteration(shape);
        double linearFlops = 8192 * 2.0 * Qwen7B.Layers * (Qwen7B.ParamsPerLayer - 2.0 * Qwen7B.Hidden) + 2.0 * Qwen7B.Vocab * Qwen7B.Hidden;
        double attnFlops = 4.0 * Qwen7B.Layers * Qwen7B.Heads * Qwen7B.HeadDim * (8192.0 * 8193 / 2);
        Assert.Equal(linearFlops + attnFlops, cost.Flops, 0);
        Assert.Equal((linearFlops + attnFlops) / 989e12, cost.TimeS, 9);
    }

    [Fact]
    public void TensorParallelismSplitsWorkAndAddsCommunication()
    {
        var one = Model(1).Decode(32, 32 * 2000).TimeS;
        var two = Model(2).Decode(32, 32 * 2000).TimeS;
        Assert.True(two < one && two > one / 2, $"TP2 {two} vs TP1 {one}");
    }

    [Fact]
    public void StepOverheadIsAddedOncePerIteration()
    {
        Assert.Equal(Model(overheadMs: 0).Decode(4, 400).TimeS + 0.0025, Model(overheadMs: 2.5).Decode(4, 400).TimeS, 12);
    }

    [Fact]
    public void KvPlanSubtractsWeightsAndReserve()
    {
        var sched = new SchedulerConfig(BatchingPolicy.Continuous, 256, 8192, QueueOrder.Fcfs, PreemptionMode.Recompute, 0, RouterKind.RoundRobin);
        var plan = KvCachePlan.For(Qwen7B, H100, 1, new KvCacheConfig(16, 0.9, 2.0), sched);
        double free = 80.0 * (1L << 30) * 0.9 - Qwen7B.WeightBytes - 2.0 * (1L << 30);
        Assert.Equal((int)Math.Floor(free / (16.0 * Qwen7B.KvBytesPerToken)), plan.TotalBlocks);
        // 57,344 bytes per token for this model (28 layers x 4 KV heads x 128 dims x 2 x 2 bytes).
        Assert.Equal(57_344, Qwen7B.KvBytesPerToken);
        Assert.InRange(plan.CapacityTokens, 900_000, 1_100_000);
    }

    [Fact]
    public void ModelThatDoesNotFitThrowsAUserError()
    {
        var sched = new SchedulerConfig(BatchingPolicy.Continuous, 256, 8192, QueueOrder.Fcfs, PreemptionMode.Recompute, 0, RouterKind.RoundRobin);
        var e = Assert.Throws<UserInputException>(() =>
            KvCachePlan.For(TestScenarios.Catalog.Model("QwQ-32B"), TestScenarios.Catalog.Gpu("L40S"), 1, new KvCacheConfig(16, 0.9, null), sched));
        Assert.Contains("does not fit", e.Message);
    }
}
