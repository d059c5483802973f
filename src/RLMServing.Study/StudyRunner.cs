using System.Collections.Concurrent;
using RLMServing.IO.Runs;
using RLMServing.IO.Scenarios;
using RLMServing.Metrics;

namespace RLMServing.Study;

/// <summary>
/// What a finding reads from one run, simulated or measured: the summary, every completed request's end-to-end
/// latency, the time-averaged number of running requests (null when nobody measured it), and the accuracy (the
/// simulator's estimate from the quality catalog, or graded answers live; null when neither).
/// </summary>
public sealed record RunOutcome(string Experiment, string Variant, RunSummary Summary, double[] E2eMs, double? MeanRunning, double? Accuracy);

/// <summary>The outcomes of a study, by experiment and variant, and where they came from.</summary>
public sealed class StudyResults(string source)
{
    private readonly ConcurrentDictionary<(string, string), RunOutcome> _runs = new();

    /// <summary>"simulated" or "live".</summary>
    public string Source { get; } = source;

    /// <summary>Experiments that were not run, with the reason (live: needs an engine setting).</summary>
    public Dictionary<string, string> NotMeasured { get; } = [];

    /// <summary>Per experiment, the command that reproduces its numbers.</summary>
    public Dictionary<string, string> Commands { get; } = [];

    /// <summary>Live: what the server said about itself (/v1/models, /metrics).</summary>
    public Dictionary<string, string> Server { get; } = [];

    public void Add(RunOutcome r) => _runs[(r.Experiment, r.Variant)] = r;

    public RunOutcome? Get(string experiment, string variant) => _runs.TryGetValue((experiment, variant), out var r) ? r : null;

    public IEnumerable<RunOutcome> Of(string experiment) => _runs.Values.Where(r => r.Experiment == experiment).OrderBy(r => r.Variant, StringComparer.Ordinal);
}

/// <summary>
/// The simulated study: every experiment's scenario file bound up front (a bad name stops the study before anything
/// runs), then every run simulated in-process on up to <c>jobs</c> threads. Results do not depend on the number of
/// jobs: each run is seeded by its scenario.
/// </summary>
public static class StudyRunner
{
    /// <summary>
    /// Binds every run of every experiment (through the scenario loader, as <c>rlms simulate</c> would bind the
    /// written file); a run that does not bind is an error naming the study file and the experiment.
    /// </summary>
    public static IReadOnlyList<(ExperimentScenario Scenario, IReadOnlyList<PreparedRun> Runs)> Bind(StudyFile study, IReadOnlyList<ExperimentScenario> scenarios,
        ScenarioInputs inputs, string outDir)
    {
        var bound = new List<(ExperimentScenario, IReadOnlyList<PreparedRun>)>();
        foreach (var sc in scenarios)
        {
            string path = Path.Combine(outDir, "scenarios", sc.FileName);
            try
            {
                bound.Add((sc, ScenarioRunner.Prepare(ScenarioLoader.Expand(path, sc.Tree(), [], null), inputs)));
            }
            catch (Exception e) when (e is UserInputException or RLMServing.Catalog.CatalogException)
            {
                throw new UserInputException($"{study.Path}: experiments.{sc.Experiment.Replace('-', '_')}: {e.Message}");
            }
        }
        return bound;
    }

    public static StudyResults Simulate(IReadOnlyList<(ExperimentScenario Scenario, IReadOnlyList<PreparedRun> Runs)> bound,
        int jobs, Action<int, int>? progress, string outDir)
    {
        var runs = new List<(string Experiment, PreparedRun Run)>();
        foreach (var (sc, prepared) in bound)
            foreach (var run in prepared)
                runs.Add((sc.Experiment, run));
        var results = new StudyResults("simulated");
        foreach (var (sc, _) in bound)
            results.Commands[sc.Experiment] = $"rlms simulate {Path.Combine(outDir, "scenarios", sc.FileName)}";
        int done = 0;
        // Longest first: a long run started last would leave the other cores idle at the end.
        var order = runs.OrderByDescending(r => r.Run.Scenario.Workload is { } w ? (long)w.Requests * w.MaxOutputTokens : 0).ToList();
        try
        {
            Parallel.ForEach(order, new ParallelOptions { MaxDegreeOfParallelism = jobs }, r =>
            {
                var result = ScenarioRunner.Simulate(r.Run, r.Run.Name);
                var e2e = result.Requests.Where(q => q.Status == RequestStatus.Completed && q.E2elMs is not null).Select(q => q.E2elMs!.Value).ToArray();
                results.Add(new RunOutcome(r.Experiment, r.Run.Name, result.Summary, e2e, MeanRunning(result), result.Summary.EstimatedAccuracy));
                progress?.Invoke(Interlocked.Increment(ref done), runs.Count);
            });
        }
        catch (AggregateException e) when (e.InnerExceptions.FirstOrDefault(x => x is UserInputException) is { } user)
        {
            throw user;
        }
        return results;
    }

    /// <summary>
    /// The time average of running requests between the first arrival and the last completion, from the timeseries
    /// (sampled on a fixed grid, so a plain mean of the samples is a time average); all replicas summed.
    /// </summary>
    internal static double? MeanRunning(RLMServing.Simulation.SimulationResult result)
    {
        var done = result.Requests.Where(r => r.CompletionTimeS is not null).ToList();
        if (done.Count == 0 || result.Timeseries.Count == 0) return null;
        double start = result.Requests.Min(r => r.ArrivalTimeS), end = done.Max(r => r.CompletionTimeS!.Value);
        var perTime = result.Timeseries.Where(p => p.TimeS >= start && p.TimeS <= end).GroupBy(p => p.TimeS).Select(g => (double)g.Sum(p => p.Running)).ToList();
        return perTime.Count == 0 ? null : perTime.Average();
    }
}
