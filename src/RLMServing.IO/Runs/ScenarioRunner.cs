using System.Text.Json;
using RLMServing.Calibration;
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
    public static IReadOnlyList<PreparedRun> Prepare(ScenarioFile file, HardwareCatalog catalog) => Prepare(file, new ScenarioInputs(catalog));

    /// <summary>Binds every run, reading calibrations, slowdown series and quality data through <paramref name="inputs"/>.</summary>
    public static IReadOnlyList<PreparedRun> Prepare(ScenarioFile file, ScenarioInputs inputs) =>
        file.Runs.Select(run =>
        {
            var catalog = inputs.Catalog;
            var scenario = ScenarioLoader.Bind(run.Tree, file.Path, inputs);
            var model = catalog.Model(scenario.Model);
            // Expert parallelism across data-parallel replicas: each replica holds and reads its share of the experts.
            if (scenario.Hardware.ExpertParallel) model = model with { ExpertShards = scenario.Hardware.Replicas };
            var gpu = catalog.Gpu(scenario.Hardware.Gpu);
            var cost = CostModelFactory.Build(scenario, model, gpu, scenario.Hardware.TensorParallel, catalog);
            var prepared = new PreparedRun(run.Name, scenario, model, gpu, cost);
            if (scenario.Cluster is { Groups.Count: > 0 } cluster)
                prepared = prepared with
                {
                    Groups = cluster.Groups.Select(g =>
                    {
                        var groupGpu = catalog.Gpu(g.Gpu);
                        return new ReplicaGroup(g.Name, g.Replicas, groupGpu, g.TensorParallel, g.Scheduler,
                            CostModelFactory.Build(scenario, model, groupGpu, g.TensorParallel, catalog), g.Role);
                    }).ToList(),
                };
            return prepared;
        }).ToList();

    /// <summary>
    /// Warnings when a calibrated run used shapes far outside the measured grid (more than twice the largest
    /// measured context or batch): the fit's physically shaped terms extrapolate, but nobody measured there. Each
    /// names the shape reached and the grid's bounds.
    /// </summary>
    /// <remarks>Also one line when the calibration was measured on another stack than the scenario's engine (<see cref="EngineMismatch"/>).</remarks>
    public static IReadOnlyList<string> CalibrationWarnings(PreparedRun run, SimulationResult result)
    {
        string scenarioEngine = run.Scenario.Engine.Name;
        var cal = run.Scenario.CostModel.Calibration;
        if (cal is null) return [];
        var warnings = new List<string>();
        if (EngineMismatch(cal, scenarioEngine, Path.GetFileName(run.Scenario.CostModel.File)) is { } mismatch) warnings.Add(mismatch);
        if (result.Requests.Count == 0) return warnings;
        var g = cal.Grid;
        string bounds = $"measured grid: batch {g.MinBatch}–{g.MaxBatch} sequences, context {g.MinContext}–{g.MaxContext} tokens ({Path.GetFileName(run.Scenario.CostModel.File)})";
        long maxContext = result.Requests.Max(r => (long)r.PromptTokens + r.OutputTokens);
        if (g.MaxContext > 0 && maxContext > 2 * g.MaxContext)
            warnings.Add($"requests reach {maxContext} tokens of context, beyond twice the calibration's largest; {bounds}");
        if (g.MaxBatch > 0 && result.Summary.MeanBatchSize > 2 * g.MaxBatch)
            warnings.Add($"batches average {result.Summary.MeanBatchSize:F0} sequences, beyond twice the calibration's largest; {bounds}");
        return warnings;
    }

    /// <summary>
    /// One line when the calibration's kernels were measured on another serving stack than the one the scenario
    /// models (vllm-v1 and vllm-v0 are both vLLM; ort is rlms replay's ONNX Runtime engine); null when they agree or
    /// the calibration does not say.
    /// </summary>
    public static string? EngineMismatch(CalibrationFile cal, string scenarioEngine, string? file = null)
    {
        if (string.IsNullOrEmpty(cal.Engine)) return null;
        string family = scenarioEngine.StartsWith("vllm", StringComparison.OrdinalIgnoreCase) ? "vllm" : scenarioEngine.ToLowerInvariant();
        if (string.Equals(cal.Engine, family, StringComparison.OrdinalIgnoreCase)) return null;
        string measured = string.IsNullOrEmpty(cal.EngineVersion) ? cal.Engine : $"{cal.Engine} ({cal.EngineVersion})";
        return $"calibration {file ?? cal.Model}: measured on {measured}, used to predict engine {scenarioEngine}; kernels, fusion and per-step " +
               "host work differ between serving stacks, so its iteration times carry the measuring stack's speed";
    }

    public static SimulationResult Simulate(PreparedRun run, string? variant, IProgress<double>? progress = null)
    {
        var result = Simulator.Run(run.Scenario, run.Model, run.Groups, progress);
        return result with { Summary = Complete(result.Summary with { Variant = variant }, result.Requests, run.Scenario) };
    }

    /// <summary>The summary with the scenario's percentile keys, the steady window and slo_met (SummaryBuilder.Complete).</summary>
    public static RunSummary Complete(RunSummary summary, IReadOnlyList<RequestRecord> requests, Scenario scenario) =>
        SummaryBuilder.Complete(summary, requests, scenario.Metrics.Percentiles, scenario.Slo);

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
        ["rlms.engine"] = $"{run.Scenario.Engine.Name} {run.Scenario.Engine.Version}",
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
