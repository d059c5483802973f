using System.Text.Json;
using RLMServing.Catalog;
using RLMServing.Costs;
using RLMServing.IO.Results;
using RLMServing.IO.Scenarios;
using RLMServing.Metrics;
using RLMServing.Scenarios;
using RLMServing.Simulation;

namespace RLMServing.IO.Runs;

/// <summary>One bound run of a scenario file (the base run or a variant).</summary>
public sealed record PreparedRun(string Name, Scenario Scenario, ModelArchitecture Model, GpuSpec Gpu, ICostModel Cost)
{
    /// <summary>The replica groups to simulate: <c>cluster.groups</c>, or the one group <c>hardware</c> describes.</summary>
    public IReadOnlyList<ReplicaGroup> Groups { get; init; } = [ReplicaGroup.Single(Scenario, Gpu, Cost)];
}

/// <summary>
/// Glue between files and the simulator core: binds every run of a scenario file up front (so a mistake in the
/// last variant is reported before anything runs), simulates, and writes results.
/// </summary>
public static class ScenarioRunner
{
    public static IReadOnlyList<PreparedRun> Prepare(ScenarioFile file, HardwareCatalog catalog) =>
        file.Runs.Select(run =>
        {
            var scenario = ScenarioLoader.Bind(run.Tree, file.Path, catalog);
            var model = catalog.Model(scenario.Model);
            var gpu = catalog.Gpu(scenario.Hardware.Gpu);
            var cost = WithHostOverhead(WithSpeculation(BuildCostModel(scenario, model, gpu), scenario, gpu, scenario.Hardware.TensorParallel, catalog), scenario);
            var prepared = new PreparedRun(run.Name, scenario, model, gpu, cost);
            if (scenario.Cluster is { Groups.Count: > 0 } cluster)
                prepared = prepared with
                {
                    Groups = cluster.Groups.Select(g =>
                    {
                        var groupGpu = catalog.Gpu(g.Gpu);
                        return new ReplicaGroup(g.Name, g.Replicas, groupGpu, g.TensorParallel, g.Scheduler,
                            WithHostOverhead(WithSpeculation(BuildCostModel(scenario, model, groupGpu, g.TensorParallel), scenario, groupGpu, g.TensorParallel, catalog), scenario), g.Role);
                    }).ToList(),
                };
            return prepared;
        }).ToList();

    /// <summary>
    /// Under speculative decoding the iteration cost adds verification and drafting; a draft model is priced by the
    /// roofline from its catalog entry on the same GPUs (a calibration is for one model).
    /// </summary>
    public static ICostModel WithSpeculation(ICostModel cost, Scenario s, GpuSpec gpu, int tensorParallel, HardwareCatalog catalog)
    {
        if (s.PoliciesOrNone.Speculative is not { } spec) return cost;
        ICostModel? draft = spec.DraftModel is { } name
            ? new RooflineCostModel(catalog.Model(name), gpu, tensorParallel, s.CostModel.ComputeEfficiency,
                s.CostModel.BandwidthEfficiency, s.CostModel.StepOverheadMs, s.CostModel.AllReduceLatencyUs)
            : null;
        return new SpeculativeCostModel(cost, draft, spec);
    }

    /// <summary>The engine's host work per iteration (cost_model.host_overhead_us), outermost: once per scheduler iteration.</summary>
    public static ICostModel WithHostOverhead(ICostModel cost, Scenario s) =>
        s.CostModel.HostOverheadUs > 0 ? new HostOverheadCostModel(cost, s.CostModel.HostOverheadUs / 1e6) : cost;

    public static ICostModel BuildCostModel(Scenario s, ModelArchitecture model, GpuSpec gpu) => BuildCostModel(s, model, gpu, s.Hardware.TensorParallel);

    public static ICostModel BuildCostModel(Scenario s, ModelArchitecture model, GpuSpec gpu, int tensorParallel)
    {
        var roofline = new RooflineCostModel(model, gpu, tensorParallel, s.CostModel.ComputeEfficiency,
            s.CostModel.BandwidthEfficiency, s.CostModel.StepOverheadMs, s.CostModel.AllReduceLatencyUs);
        ICostModel cost = s.CostModel.Kind switch
        {
            "roofline" => roofline,
            "calibrated" => new CalibratedCostModel(s.CostModel.Calibration!.ToModel(), roofline),
            var k => throw new UserInputException($"cost_model.kind: unknown cost model '{k}'"),
        };
        return s.CostModel.Calls == IterationCalls.PerPrefillChunk ? new PerCallCostModel(cost) : cost;
    }

    /// <summary>
    /// Warnings when a calibrated run used shapes far outside the measured grid (more than twice the largest
    /// measured context or batch): the fit's physically shaped terms extrapolate, but nobody measured there. Each
    /// names the shape reached and the grid's bounds.
    /// </summary>
    public static IReadOnlyList<string> CalibrationWarnings(PreparedRun run, SimulationResult result)
    {
        var cal = run.Scenario.CostModel.Calibration;
        if (cal is null || result.Requests.Count == 0) return [];
        var warnings = new List<string>();
        var g = cal.Grid;
        string bounds = $"measured grid: batch {g.MinBatch}–{g.MaxBatch} sequences, context {g.MinContext}–{g.MaxContext} tokens ({Path.GetFileName(run.Scenario.CostModel.File)})";
        long maxContext = result.Requests.Max(r => (long)r.PromptTokens + r.OutputTokens);
        if (g.MaxContext > 0 && maxContext > 2 * g.MaxContext)
            warnings.Add($"requests reach {maxContext} tokens of context, beyond twice the calibration's largest; {bounds}");
        if (g.MaxBatch > 0 && result.Summary.MeanBatchSize > 2 * g.MaxBatch)
            warnings.Add($"batches average {result.Summary.MeanBatchSize:F0} sequences, beyond twice the calibration's largest; {bounds}");
        return warnings;
    }

    public static SimulationResult Simulate(PreparedRun run, string? variant, IProgress<double>? progress = null)
    {
        var result = Simulator.Run(run.Scenario, run.Model, run.Groups, progress);
        return result with { Summary = result.Summary with { Variant = variant } };
    }

    public static Dictionary<string, string> Metadata(PreparedRun run, string? variant, string command)
    {
        var meta = IdentityMetadata(run, variant, command);
        // cost_model.slowdown, when given: the file it came from, or the constant factor.
        var cm = run.Scenario.CostModel;
        if (cm.Slowdown is { } slowdown)
            meta["rlms.slowdown"] = cm.SlowdownFile ?? slowdown.Factors[0].ToString("R", System.Globalization.CultureInfo.InvariantCulture);
        if (cm.SlowdownRead is { } read)
        {
            meta["rlms.slowdown_window_s"] = read.WindowS.ToString("R", System.Globalization.CultureInfo.InvariantCulture);
            meta["rlms.slowdown_reference"] = read.Reference;
        }
        return meta;
    }

    /// <summary>What identifies a run of the scenario: schema, source, scenario, variant, seed, hardware, cost model, command.</summary>
    public static Dictionary<string, string> IdentityMetadata(PreparedRun run, string? variant, string command) => new()
    {
        ["rlms.schema"] = "requests/v1",
        ["rlms.source"] = "simulator",
        ["rlms.scenario"] = run.Scenario.Name,
        ["rlms.variant"] = variant ?? "",
        ["rlms.seed"] = run.Scenario.Seed.ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["rlms.model"] = run.Model.Name,
        ["rlms.gpu"] = run.Gpu.Name,
        ["rlms.replicas"] = run.Scenario.Hardware.Replicas.ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["rlms.tensor_parallel"] = run.Scenario.Hardware.TensorParallel.ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["rlms.cost_model"] = run.Scenario.CostModel.Kind,
        ["rlms.command"] = command,
    };

    /// <summary>comparison.json: every variant's summary side by side, in scenario order.</summary>
    public static async Task WriteComparisonAsync(string dir, string scenario, IReadOnlyList<RunSummary> summaries)
    {
        using var staged = new StagedFiles();
        await StageComparisonAsync(staged, dir, scenario, summaries);
        staged.Commit();
    }

    /// <summary>comparison.json of a run with variants, staged with the variants' files.</summary>
    public static async Task StageComparisonAsync(StagedFiles staged, string dir, string scenario, IReadOnlyList<RunSummary> summaries)
    {
        var doc = new Dictionary<string, object>
        {
            ["scenario"] = scenario,
            ["variants"] = summaries.Select(s => s.Variant ?? "").ToList(),
            ["summaries"] = summaries,
        };
        await staged.StageAsync(dir, "comparison.json", p => File.WriteAllTextAsync(p, JsonSerializer.Serialize(doc, ResultWriter.Json) + "\n"));
    }
}
