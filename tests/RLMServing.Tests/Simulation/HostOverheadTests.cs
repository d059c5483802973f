using RLMServing.Calibration;
using RLMServing.Costs;
using RLMServing.IO.Calibration;
using RLMServing.IO.Catalog;
using RLMServing.IO.Runs;
using RLMServing.IO.Scenarios;
using RLMServing.Scenarios;
using RLMServing.Tests.Cli;
using Xunit;

namespace RLMServing.Tests.Simulation;

/// <summary>cost_model.host_overhead_us and a calibration's measured host_overhead: the engine's host work per iteration.</summary>
public class HostOverheadTests
{
    [Fact]
    public void TheOverheadIsAddedOncePerIterationThatRunsSomething()
    {
        var catalog = CatalogLoader.LoadDefault();
        var roofline = new RooflineCostModel(catalog.Model("tiny"), catalog.Gpu("CPU"), 1, 0.6, 0.85, 1.0, 10);
        var perCall = new PerCallCostModel(roofline);
        var host = new HostOverheadCostModel(perCall, 25e-6);
        var mixed = new BatchShape(new[] { new PrefillChunk(100, 0, true), new PrefillChunk(64, 128, false) }, 5, 2000);
        // Three calls, one iteration: one overhead.
        Assert.Equal(perCall.Iteration(mixed).TimeS + 25e-6, host.Iteration(mixed).TimeS, 12);
        Assert.Equal(perCall.Decode(4, 900).TimeS + 25e-6, host.Decode(4, 900).TimeS, 12);
        Assert.Equal(perCall.Iteration(mixed).Flops, host.Iteration(mixed).Flops);
        Assert.Equal(0, host.Decode(0, 0).TimeS);
        Assert.Equal(perCall.FixedStepS, host.FixedStepS);
        Assert.Throws<ArgumentOutOfRangeException>(() => new HostOverheadCostModel(roofline, -1e-6));
    }

    private static string Scenario(string costModel)
    {
        var dir = RlmsProcess.TempDir();
        var path = Path.Combine(dir, "s.yaml");
        File.WriteAllText(path, $$"""
            name: host
            seed: 4
            hardware: { gpu: CPU, replicas: 1, tensor_parallel: 1 }
            model: tiny
            engine: ort
            cost_model: {{costModel}}
            kv_cache: { block_size: 16, gpu_memory_utilization: 0.9, activation_reserve_gib: 0.01 }
            workload:
              requests: 1
              arrival: { process: poisson, rate: 1 }
              prompt_tokens: { dist: uniform, min: 100, max: 100 }
              output_tokens: { dist: uniform, min: 200, max: 200 }
            scheduler: { batching: continuous, max_num_seqs: 4, max_num_batched_tokens: 512 }
            """);
        return path;
    }

    private static PreparedRun Prepare(string path, params string[] sets) => TestScenarios.PrepareFile(path, sets);

    private static Metrics.RequestRecord One(string path, params string[] sets) =>
        Assert.Single(ScenarioRunner.Simulate(Prepare(path, sets), null).Requests);

    /// <summary>A lone request: its prefill is one iteration and each later token one more, so each pays the overhead once.</summary>
    [Fact]
    public void EveryIterationOfALoneRequestPaysTheOverhead()
    {
        var path = Scenario("{ kind: roofline }");
        var plain = One(path);
        var slow = One(path, "cost_model.host_overhead_us=50");
        Assert.Equal(plain.TtftMs!.Value + 0.05, slow.TtftMs!.Value, 9);
        Assert.Equal(plain.TpotMs!.Value + 0.05, slow.TpotMs!.Value, 9);
        Assert.Equal(plain.E2elMs!.Value + 200 * 0.05, slow.E2elMs!.Value, 6);
    }

    [Fact]
    public void ACalibrationCarriesItsMeasuredOverheadAndTheKeyOverridesIt()
    {
        var dir = RlmsProcess.TempDir();
        var shipped = CalibrationStore.Read(Path.Combine(RlmsProcess.RepoRoot(), "calibration", "cpu-tiny-tp1.json"));
        var cal = Path.Combine(dir, "cal.json");
        CalibrationStore.Write(cal, shipped with { HostOverhead = new HostOverhead { PerIterationUs = 20, MedianUs = 18, Iterations = 1000, Sources = ["x"] } });
        Assert.Equal(20, CalibrationStore.Read(cal).HostOverhead!.PerIterationUs);
        var path = Scenario($"{{ kind: calibrated, file: {cal} }}");
        Assert.Equal(20, Prepare(path).Scenario.CostModel.HostOverheadUs);
        Assert.Equal(0, Prepare(path, "cost_model.host_overhead_us=0").Scenario.CostModel.HostOverheadUs);
        var none = One(path, "cost_model.host_overhead_us=0");
        var measured = One(path);
        Assert.Equal(none.TpotMs!.Value + 0.02, measured.TpotMs!.Value, 9);
        Assert.Null(shipped.HostOverhead);
    }

    [Fact]
    public void ANegativeOverheadIsRefusedNamingTheKey()
    {
        var path = Scenario("{ kind: roofline, host_overhead_us: -3 }");
        var e = Assert.Throws<UserInputException>(() => Prepare(path));
        Assert.Contains("host_overhead_us", e.Message);
    }
}
