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
        var overrides = new List<(string, ConfigNode, string)>();
        foreach (var set in sets ?? [])
        {
            int eq = set.IndexOf('=');
            if (eq <= 0) throw new UserInputException($"--set {set}: expected dotted.key=value");
            var key = set[..eq].Trim();
            if (key == "workload" || key.StartsWith("workload.", StringComparison.Ordinal))
                throw new UserInputException($"--set {set}: the workload is the measured run's trace");
            overrides.Add((key, ConfigNode.ParseValue(set[(eq + 1)..]), $"--set {set}"));
        }
        return ScenarioLoader.Expand(scenarioPath, root, overrides, null);
    }
}
