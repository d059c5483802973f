using RLMServing.IO.Scenarios;

namespace RLMServing.IO.Runs;

/// <summary>
/// A scenario file applied to a measured run (<c>rlms validate --measured RUN --scenario S.yaml</c>): S's engine,
/// hardware, cost model and scheduler, with its workload replaced by the run's own trace (RUN/trace.parquet from
/// <c>rlms trace import</c>), so the simulation serves exactly the requests the run served at their arrival times.
/// </summary>
public static class MeasuredRunScenario
{
    /// <summary>The imported run's folder (a folder, or its requests.parquet or trace.parquet).</summary>
    public static string RunFolder(string path)
    {
        var dir = Directory.Exists(path) ? path : Path.GetDirectoryName(Path.GetFullPath(path)) ?? ".";
        foreach (var f in new[] { MeasuredRun.TraceFile, MeasuredRun.RequestsFile })
            if (!File.Exists(Path.Combine(dir, f)))
                throw new UserInputException($"--measured: {path}: no {f} there; import the run first: rlms trace import RUN --format llmservingsim-run|distserve-run|vllm-bench --out DIR");
        return dir;
    }

    public static ScenarioFile Load(string scenarioPath, string runFolder, IEnumerable<string>? sets = null)
    {
        var root = ScenarioLoader.ReadTree(scenarioPath);
        var workload = new ConfigMap(
        [
            new("trace", new ConfigScalar(Path.GetFullPath(Path.Combine(runFolder, MeasuredRun.TraceFile)))),
            new("format", new ConfigScalar("parquet")),
        ], (root.Get("workload") as ConfigNode)?.Line ?? 0);
        root.Set("workload", workload);
        var overrides = ScenarioLoader.Overrides(sets);
        if (overrides.FirstOrDefault(o => o.Key == "workload" || o.Key.StartsWith("workload.", StringComparison.Ordinal)) is { Source: not null } bad)
            throw new UserInputException($"{bad.Source}: the workload is the measured run's trace");
        return ScenarioLoader.Expand(scenarioPath, root, overrides, null);
    }
}
