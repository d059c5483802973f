using RLMServing.Costs;
using RLMServing.Scenarios;
using RLMServing.Tests.Simulation;
using Xunit;

namespace RLMServing.Tests.Engines;

/// <summary>The engine a scenario names: its defaults, its scheduling rules and its execution rules on the cost model.</summary>
public class EngineModelTests
{
    private const string Workload = "workload: { requests: 40, arrival: { process: poisson, rate: 20 }, prompt_tokens: { dist: constant, value: 900 }, output_tokens: { dist: constant, value: 20 } }\n";

    private static RLMServing.IO.Runs.PreparedRun Prepare(string yaml, params string[] sets)
    {
        string path = Path.Combine(Path.GetTempPath(), $"rlms-engine-{Guid.NewGuid():N}.yaml");
        File.WriteAllText(path, yaml);
        try { return TestScenarios.PrepareFile(path, sets); }
        finally { File.Delete(path); }
    }

    private static string Scenario(string gpu, string extra = "") =>
        $"name: engine\nmodel: DeepSeek-R1-Distill-Qwen-7B\nhardware: {{ gpu: {gpu} }}\n{Workload}{extra}";

    [Fact]
    public void ScenarioFilesDefaultToVllmV1AsVllmServeSetsIt()
    {
        var s = Prepare(Scenario("H100-SXM-80G")).Scenario;
        Assert.Equal(EngineConfig.VllmV1, s.Engine.Name);
        Assert.Equal(BatchingPolicy.VllmV1, s.Scheduler.Batching);
        Assert.Equal(1024, s.Scheduler.MaxNumSeqs);
        Assert.Equal(8192, s.Scheduler.MaxNumBatchedTokens);
        Assert.True(s.KvCache.Memory.PrefixCaching);
        Assert.Equal(0, s.KvCache.Memory.Watermark);
        Assert.True(s.Engine.AsyncScheduling);
        Assert.Equal([1, 2, 4, 8], s.Engine.CudaGraphSizes!.Take(4));
        Assert.Equal(512, s.Engine.CudaGraphSizes!.Max());
    }

    [Fact]
    public void VllmV1KeepsSmallerBudgetsOnA100AndSmallGpus()
    {
        var s = Prepare(Scenario("A100-SXM-80G")).Scenario;
        Assert.Equal(256, s.Scheduler.MaxNumSeqs);
        Assert.Equal(2048, s.Scheduler.MaxNumBatchedTokens);
        Assert.Equal(512, s.Engine.CudaGraphSizes!.Max());   // min(2 x 256, 512)
        var small = Prepare(Scenario("H100-SXM-80G", "scheduler: { max_num_seqs: 16 }\n")).Scenario;
        Assert.Equal(32, small.Engine.CudaGraphSizes!.Max());
    }

    [Fact]
    public void VllmV0DefaultsArePrefillFirstWithItsWatermarkAndBudget()
    {
        var run = Prepare(Scenario("H100-SXM-80G", "engine: vllm-v0\n"));
        Assert.Equal(BatchingPolicy.VllmV0, run.Scenario.Scheduler.Batching);
        Assert.Equal(Math.Max(run.Model.MaxContext, 2048), run.Scenario.Scheduler.MaxNumBatchedTokens);
        Assert.Equal(0.01, run.Scenario.KvCache.Memory.Watermark);
        Assert.False(run.Scenario.KvCache.Memory.PrefixCaching);
    }

    [Fact]
    public void ExplicitKeysWinOverTheEngineDefaults()
    {
        var s = Prepare(Scenario("H100-SXM-80G", "engine: { name: vllm-v1, enforce_eager: true, async_scheduling: false }\nscheduler: { batching: continuous, max_num_seqs: 64, max_num_batched_tokens: 2048 }\nkv_cache: { prefix_caching: false }\n")).Scenario;
        Assert.Equal(BatchingPolicy.Continuous, s.Scheduler.Batching);
        Assert.Equal(64, s.Scheduler.MaxNumSeqs);
        Assert.False(s.KvCache.Memory.PrefixCaching);
        Assert.Null(s.Engine.CudaGraphSizes);
        Assert.False(s.Engine.AsyncScheduling);
    }

    [Theory]
    [InlineData("engine: vllm-v3\n", "engine: unknown engine 'vllm-v3'; expected one of vllm-v1, vllm-v0, ort")]
    [InlineData("scheduler: { preemption: swap }\n", "scheduler.preemption: vLLM V1 preempts by recompute only")]
    [InlineData("engine: { name: vllm-v1, cuda_graph_sizes: [8, 0] }\n", "engine.cuda_graph_sizes: item 1: expected a positive whole number")]
    [InlineData("engine: { name: ort, async_scheduling: true }\n", "engine.async_scheduling: the ort engine runs eagerly")]
    [InlineData("scheduler: { long_prefill_token_threshold: -5 }\n", "scheduler.long_prefill_token_threshold: must be 0 (no cap) or positive")]
    [InlineData("engine: vllm-v0\nscheduler: { max_paddings: -1 }\n", "scheduler.max_paddings: must be 0 or positive (padding tokens allowed in one prefill step), got -1")]
    [InlineData("scheduler: { max_paddings: 256 }\n", "scheduler.max_paddings: early vLLM's padded prefill batches are modelled under scheduler.batching: vllm_v0 (engine: vllm-v0) only, not vllm_v1")]
    [InlineData("engine: vllm-v0\nscheduler: { batching: continuous, max_paddings: 256 }\n", "scheduler.max_paddings: early vLLM's padded prefill batches are modelled under scheduler.batching: vllm_v0 (engine: vllm-v0) only, not continuous")]
    [InlineData("scheduler: { max_num_partial_prefills: 2 }\n", "scheduler.max_num_partial_prefills: only 1 is modelled, got 2: vLLM V1 does not run concurrent partial prefills")]
    public void BadEngineSettingsAreOneLineNamingTheKey(string extra, string expected)
    {
        var e = Assert.Throws<UserInputException>(() => Prepare(Scenario("H100-SXM-80G", extra)));
        Assert.Contains(expected, e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void MaxNumPartialPrefillsAcceptsVllmsDefaultToMirrorARunsSettings()
    {
        var s = Prepare(Scenario("H100-SXM-80G", "scheduler: { max_num_partial_prefills: 1 }\n")).Scenario;
        Assert.Equal(BatchingPolicy.VllmV1, s.Scheduler.Batching);
    }

    [Fact]
    public void VllmV0StepsArePrefillOnlyOrDecodeOnly_WholePrompts_WhileV1MixesChunksWithDecodes()
    {
        // 40 prompts of 900 tokens at 20 req/s with 20-token answers: new prompts keep arriving while others decode.
        (List<BatchShape> Shapes, RLMServing.Simulation.SimulationResult Result) Run(string engine)
        {
            var run = Prepare(Scenario("H100-SXM-80G", $"engine: {engine}\n"));
            var recording = new RecordingCostModel(run.Cost);
            var result = RLMServing.Simulation.Simulator.Run(run.Scenario, run.Model, run.Gpu, recording);
            return (recording.Shapes, result);
        }
        var (v0, v0Result) = Run("vllm-v0");
        var withPrefill = v0.Where(x => x.Prefills.Length > 0).ToList();
        Assert.NotEmpty(withPrefill);
        Assert.All(withPrefill, x => Assert.Equal(0, x.DecodeCount));
        Assert.All(withPrefill.SelectMany(x => x.Prefills.ToArray()), c => Assert.Equal((900, 0L), (c.Tokens, c.ContextTokens)));
        Assert.Equal(40, v0Result.Requests.Count(r => r.OutputTokens == 20));
        var (v1, _) = Run("vllm-v1");
        Assert.Contains(v1, x => x.Prefills.Length > 0 && x.DecodeCount > 0);
    }

    [Fact]
    public void CudaGraphsPadABatchToTheNextCaptureSizeAndLeaveLargerOnesAlone()
    {
        var inner = new CountingCostModel();
        var graphs = new CudaGraphCostModel(inner, EngineConfig.DefaultCudaGraphSizes(256));
        graphs.Decode(3, 300);
        Assert.Equal((4, 300L), inner.LastDecode);
        graphs.Decode(130, 1000);
        Assert.Equal((136, 1000L), inner.LastDecode);
        graphs.Decode(600, 1000);
        Assert.Equal((600, 1000L), inner.LastDecode);
        // A mixed batch of 100 prefill tokens and 30 decodes (130 tokens) runs as 136: six padding tokens without KV.
        graphs.Iteration(new BatchShape(new[] { new PrefillChunk(100, 0, true) }, 30, 3000));
        Assert.Equal((36, 3000L), (inner.LastShape.DecodeCount, inner.LastShape.DecodeKvSum));
        Assert.Equal(136, inner.LastShape.TotalTokens);
    }

    [Fact]
    public void AsyncSchedulingOverlapsHostWorkWithTheGpuStep()
    {
        var gpu = new CountingCostModel { TimeS = 0.010 };
        Assert.Equal(0.013, new HostOverheadCostModel(gpu, 0.003).Decode(8, 100).TimeS, 12);
        Assert.Equal(0.010, new HostOverheadCostModel(gpu, 0.003, overlapped: true).Decode(8, 100).TimeS, 12);
        Assert.Equal(0.020, new HostOverheadCostModel(gpu, 0.020, overlapped: true).Decode(8, 100).TimeS, 12);
    }

    [Fact]
    public void LongPrefillThresholdSplitsAPromptIntoCappedChunks()
    {
        // One 900-token prompt alone: uncapped it prefills in one step; capped at 256 it takes four (256 x 3 + 132).
        string one = "workload: { requests: 1, arrival: { process: poisson, rate: 1 }, prompt_tokens: { dist: constant, value: 900 }, output_tokens: { dist: constant, value: 2 } }\n";
        string yaml = $"name: one\nmodel: DeepSeek-R1-Distill-Qwen-7B\nhardware: {{ gpu: H100-SXM-80G }}\n{one}";
        var free = RLMServing.Simulation.Simulator.Run(Prepare(yaml).Scenario, Prepare(yaml).Model, Prepare(yaml).Gpu, Prepare(yaml).Cost);
        var capped = Prepare(yaml + "scheduler: { long_prefill_token_threshold: 256 }\n");
        var result = RLMServing.Simulation.Simulator.Run(capped.Scenario, capped.Model, capped.Gpu, capped.Cost);
        // Iterations: prefill steps + one decode step for the second token.
        Assert.Equal(2, free.Summary.Iterations);
        Assert.Equal(5, result.Summary.Iterations);
    }

    [Fact]
    public void EarlyVllmPaddedPrefillSteps_CountBatchTimesLongestPromptAndStopAtMaxPaddings()
    {
        // 60 prompts of 100 to 1,000 tokens arriving together-ish: unpadded, V0 packs as many as the 8,192-token budget
        // holds, whatever their lengths; vLLM 0.2.x counted prompts x longest and allowed 256 padding tokens a step.
        const string burst = "workload: { requests: 60, arrival: { process: poisson, rate: 400 }, prompt_tokens: { dist: uniform, min: 100, max: 1000 }, output_tokens: { dist: constant, value: 4 } }\n";
        string yaml = $"name: pad\nmodel: DeepSeek-R1-Distill-Qwen-7B\nhardware: {{ gpu: H100-SXM-80G }}\n{burst}engine: vllm-v0\n";
        List<PrefillChunk[]> Steps(string scheduler)
        {
            var run = Prepare(yaml + scheduler);
            var recording = new RecordingCostModel(run.Cost);
            var result = RLMServing.Simulation.Simulator.Run(run.Scenario, run.Model, run.Gpu, recording);
            Assert.Equal(60, result.Requests.Count(r => r.OutputTokens == 4));
            return recording.Shapes.Where(x => x.Prefills.Length > 0).Select(x => x.Prefills.ToArray()).ToList();
        }
        static (long Padded, int Padding) Padding(PrefillChunk[] step) =>
            ((long)step.Length * step.Max(c => c.Tokens), step.Length * step.Max(c => c.Tokens) - step.Sum(c => c.Tokens));

        var packed = Steps("scheduler: { max_num_batched_tokens: 8192 }\n");
        Assert.Contains(packed, step => Padding(step).Padding > 256);

        var padded = Steps("scheduler: { max_num_batched_tokens: 8192, max_paddings: 256 }\n");
        Assert.All(padded, step => Assert.True(Padding(step).Padded <= 8192 && Padding(step).Padding <= 256, $"{step.Length} prompts, padded {Padding(step)}"));
        Assert.Contains(padded, step => step.Length > 1);
        Assert.True(padded.Count > packed.Count, "the padding limit splits prefills into more steps");
    }

    [Fact]
    public void EarlyVllmPricesAPrefillStepAtItsPaddedShape()
    {
        var inner = new CountingCostModel();
        var padding = new PaddedPrefillCostModel(inner);
        padding.Iteration(new BatchShape(new[] { new PrefillChunk(100, 0, true), new PrefillChunk(300, 0, true), new PrefillChunk(250, 0, true) }, 0, 0));
        Assert.Equal([300, 300, 300], inner.LastShape.Prefills.ToArray().Select(c => c.Tokens));
        padding.Iteration(new BatchShape(new[] { new PrefillChunk(700, 0, true) }, 0, 0));
        Assert.Equal([700], inner.LastShape.Prefills.ToArray().Select(c => c.Tokens));
        padding.Decode(12, 3000);
        Assert.Equal((12, 3000L), inner.LastDecode);

        // Built from the scenario: two prompts of 100 and 900 tokens cost what two of 900 cost, more than packed.
        var uneven = new BatchShape(new[] { new PrefillChunk(100, 0, true), new PrefillChunk(900, 0, true) }, 0, 0);
        var even = new BatchShape(new[] { new PrefillChunk(900, 0, true), new PrefillChunk(900, 0, true) }, 0, 0);
        var run = Prepare(Scenario("A100-SXM-80G", "engine: vllm-v0\nscheduler: { max_paddings: 256 }\n"));
        Assert.Equal(run.Cost.Iteration(even).TimeS, run.Cost.Iteration(uneven).TimeS);
        var packed = Prepare(Scenario("A100-SXM-80G", "engine: vllm-v0\n"));
        Assert.True(packed.Cost.Iteration(uneven).TimeS < run.Cost.Iteration(uneven).TimeS);
        Assert.Null(packed.Scenario.Scheduler.MaxPaddings);
    }

    /// <summary>Prices as the inner model does and keeps every mixed or prefill iteration's shape.</summary>
    private sealed class RecordingCostModel(ICostModel inner) : ICostModel
    {
        public List<BatchShape> Shapes { get; } = [];
        public double PeakFlops => inner.PeakFlops;
        public double PeakBandwidth => inner.PeakBandwidth;
        public double FixedStepS => inner.FixedStepS;
        public bool UsesKvSpread => inner.UsesKvSpread;

        public IterationCost Iteration(in BatchShape shape)
        {
            Shapes.Add(shape with { Prefills = shape.Prefills.ToArray() });
            return inner.Iteration(shape);
        }

        public IterationCost Decode(int decodeCount, long kvSum, KvSpread spread = default) => inner.Decode(decodeCount, kvSum, spread);
    }

    /// <summary>Records what it was asked to price; every iteration costs <see cref="TimeS"/>.</summary>
    private sealed class CountingCostModel : ICostModel
    {
        public double TimeS { get; init; } = 0.001;
        public (int, long) LastDecode { get; private set; }
        public BatchShape LastShape { get; private set; }
        public double PeakFlops => 1;
        public double PeakBandwidth => 1;
        public double FixedStepS => 0;

        public IterationCost Iteration(in BatchShape shape) { LastShape = shape; return new IterationCost(TimeS, 0, 0); }

        public IterationCost Decode(int decodeCount, long kvSum, KvSpread spread = default) { LastDecode = (decodeCount, kvSum); return new IterationCost(TimeS, 0, 0); }
    }
}
