using RLMServing.Catalog;
using RLMServing.Scenarios;

namespace RLMServing.Costs;

/// <summary>
/// Builds the cost model of one replica group from a bound scenario, the one way the runner, replay, sweeps and
/// tests all use: the base model (roofline; a calibration's fitted model, or its per-layer operator tables, with the
/// roofline outside its grid), then the
/// decorators in the order an iteration meets them — early vLLM's padding of a prefill step's prompts to the longest
/// (scheduler.max_paddings), one call per prefill chunk (engines that run chunks
/// separately), CUDA-graph padding of decode batches (the engine's), speculative drafting and verification, and
/// the engine's host work per iteration outermost (once per scheduler turn; overlapped under async scheduling).
/// The machine's speed over time (cost_model.slowdown) is applied by the engine, which knows when iterations start.
/// </summary>
public static class CostModelFactory
{
    public static ICostModel Build(Scenario s, ModelArchitecture model, GpuSpec gpu, int tensorParallel, HardwareCatalog catalog)
    {
        var cost = Base(s, model, gpu, tensorParallel);
        if (s.Scheduler.MaxPaddings is not null) cost = new PaddedPrefillCostModel(cost);
        if (s.CostModel.Calls == IterationCalls.PerPrefillChunk) cost = new PerCallCostModel(cost);
        if (s.Engine.CudaGraphSizes is { Count: > 0 } sizes) cost = new CudaGraphCostModel(cost, sizes);
        cost = WithSpeculation(cost, s, gpu, tensorParallel, catalog);
        return s.CostModel.HostOverheadUs > 0 ? new HostOverheadCostModel(cost, s.CostModel.HostOverheadUs / 1e6, s.Engine.AsyncScheduling) : cost;
    }

    /// <summary>The roofline model with the scenario's efficiency knobs, for a model on tensorParallel GPUs.</summary>
    public static RooflineCostModel Roofline(Scenario s, ModelArchitecture model, GpuSpec gpu, int tensorParallel) =>
        new(model, gpu, tensorParallel, s.CostModel.ComputeEfficiency, s.CostModel.BandwidthEfficiency, s.CostModel.StepOverheadMs, s.CostModel.AllReduceLatencyUs);

    private static ICostModel Base(Scenario s, ModelArchitecture model, GpuSpec gpu, int tensorParallel)
    {
        var roofline = Roofline(s, model, gpu, tensorParallel);
        return s.CostModel.Kind switch
        {
            "roofline" => roofline,
            "calibrated" when s.CostModel.Calibration!.OperatorTables is { } tables => new OperatorTableCostModel(tables, roofline, model.ExpertShards),
            "calibrated" => new CalibratedCostModel(s.CostModel.Calibration!.ToModel(), roofline),
            var k => throw new UserInputException($"cost_model.kind: unknown cost model '{k}'"),
        };
    }

    /// <summary>
    /// Under speculative decoding the iteration cost adds verification and drafting; a draft model is priced by the
    /// roofline from its catalog entry on the same GPUs (a calibration is for one model).
    /// </summary>
    private static ICostModel WithSpeculation(ICostModel cost, Scenario s, GpuSpec gpu, int tensorParallel, HardwareCatalog catalog)
    {
        if (s.PoliciesOrNone.Speculative is not { } spec) return cost;
        ICostModel? draft = spec.DraftModel is { } name ? Roofline(s, catalog.Model(name), gpu, tensorParallel) : null;
        return new SpeculativeCostModel(cost, draft, spec);
    }
}
