using RLMServing.Calibration;
using RLMServing.Costs;
using RLMServing.IO.Catalog;
using RLMServing.Scenarios;
using Xunit;

namespace RLMServing.Tests.Simulation;

public class PerCallCostModelTests
{
    private static CalibratedCostModel Calibrated()
    {
        var catalog = CatalogLoader.LoadDefault();
        var roofline = new RooflineCostModel(catalog.Model("tiny"), catalog.Gpu("CPU"), 1, 0.6, 0.85, 1.0, 10);
        return new CalibratedCostModel(new IterationCoefficients(40, 0.5, 20, 0.02, 0.001), roofline);
    }

    [Fact]
    public void AMixedIterationCostsTheSumOfItsCalls()
    {
        var inner = Calibrated();
        var perCall = new PerCallCostModel(inner);
        PrefillChunk a = new(100, 0, true), b = new(64, 128, false);
        var mixed = new BatchShape(new[] { a, b }, 5, 2000);
        double expected = inner.Iteration(new BatchShape(new[] { a }, 0, 0)).TimeS
            + inner.Iteration(new BatchShape(new[] { b }, 0, 0)).TimeS
            + inner.Decode(5, 2000).TimeS;
        Assert.Equal(expected, perCall.Iteration(mixed).TimeS, 12);
        // Two more fixed per-call costs (40 µs each) than pricing the iteration as one call.
        Assert.Equal(2 * 40e-6, perCall.Iteration(mixed).TimeS - inner.Iteration(mixed).TimeS, 12);
    }

    [Fact]
    public void OneCallIterationsAreUnchanged()
    {
        var inner = Calibrated();
        var perCall = new PerCallCostModel(inner);
        var single = new BatchShape(new[] { new PrefillChunk(300, 0, true) }, 0, 0);
        Assert.Equal(inner.Iteration(single), perCall.Iteration(single));
        Assert.Equal(inner.Decode(7, 900), perCall.Iteration(BatchShape.DecodeOnly(7, 900)));
        Assert.Equal(inner.Decode(7, 900), perCall.Decode(7, 900));
    }

    [Fact]
    public void ScenarioKeySelectsPerCallPricing()
    {
        var dir = RLMServing.Tests.Cli.RlmsProcess.TempDir();
        var path = Path.Combine(dir, "s.yaml");
        File.WriteAllText(path, """
            hardware: { gpu: CPU }
            model: tiny
            engine: ort
            cost_model: { kind: roofline, iteration_calls: per_prefill_chunk }
            workload: { requests: 3, arrival: { process: poisson, rate: 1 }, prompt_tokens: { dist: constant, value: 10 }, output_tokens: { dist: constant, value: 10 } }
            kv_cache: { activation_reserve_gib: 0.01 }
            """);
        var runs = RLMServing.IO.Runs.ScenarioRunner.Prepare(RLMServing.IO.Scenarios.ScenarioLoader.Load(path), CatalogLoader.LoadDefault());
        Assert.Equal(IterationCalls.PerPrefillChunk, runs[0].Scenario.CostModel.Calls);
        Assert.IsType<PerCallCostModel>(runs[0].Cost);
        var bad = Assert.Throws<UserInputException>(() => RLMServing.IO.Scenarios.ScenarioLoader.Bind(
            RLMServing.IO.Scenarios.ScenarioLoader.Load(path, ["cost_model.iteration_calls=fused"]).Runs[0].Tree, path, CatalogLoader.LoadDefault()));
        Assert.Contains("iteration_calls", bad.Message);
    }
}
