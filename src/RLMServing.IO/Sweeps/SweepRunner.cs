using System.Collections.Concurrent;
using System.Globalization;
using MathNet.Numerics.Distributions;
using MathNet.Numerics.Statistics;
using RLMServing.Catalog;
using RLMServing.IO.Runs;
using RLMServing.IO.Scenarios;
using RLMServing.Metrics;
using RLMServing.Sweeps;

namespace RLMServing.IO.Sweeps;

/// <summary>One configuration of an expanded sweep: a design point and (when the base has variants) one variant.</summary>
public sealed record SweepConfiguration(int Id, AxisValue[] Point, int VariantIndex, string? Variant)
{
    public string Describe(IReadOnlyList<Axis> axes) =>
        string.Join(", ", axes.Select((a, i) => $"{a.Key}={Point[i].Text}").Concat(Variant is null ? [] : [$"variant={Variant}"]));
}

/// <summary>
/// Expands a sweep into configurations, checks every one binds (so a bad axis key or value stops the sweep
/// before anything runs, naming the sweep file and key), and runs one configuration: each seed simulated
/// in-process, with the capacity search and cost columns when the sweep asks for them.
/// </summary>
public sealed class SweepRunner
{
    // One set of inputs for the whole sweep: every configuration, seed and capacity probe reads each file once.
    private readonly ScenarioInputs _inputs;

    public SweepRunner(SweepFile sweep, HardwareCatalog catalog) : this(sweep, new ScenarioInputs(catalog)) { }

    public SweepRunner(SweepFile sweep, ScenarioInputs inputs)
    {
        Sweep = sweep;
        _inputs = inputs;
        Columns = SweepColumns.For(sweep);
        var variants = ScenarioLoader.Expand(sweep.BasePath, (ConfigMap)sweep.BaseTree.Clone(), [], null);
        var points = DesignSampler.Expand(sweep.Axes, sweep.Sampling);
        var configs = new List<SweepConfiguration>();
        foreach (var p in points)
            for (int v = 0; v < variants.Runs.Count; v++)
                configs.Add(new SweepConfiguration(configs.Count, p, v, variants.HasVariants ? variants.Runs[v].Name : null));
        Configurations = configs;
    }

    public SweepFile Sweep { get; }
    public IReadOnlyList<SweepConfiguration> Configurations { get; }
    public IReadOnlyList<ResultColumn> Columns { get; }

    /// <summary>Binds every configuration (first seed; with the capacity start rate) and checks prices; throws the first problem.</summary>
    public void Validate()
    {
        foreach (var c in Configurations)
        {
            var run = Prepare(c, Sweep.Seeds[0], [], validate: true);
            if (Sweep.Capacity is { } cap)
            {
                if (cap.GoodputFraction is not null && !run.Scenario.Slo.IsSet)
                    throw Error(c, $"capacity.slo.goodput_fraction needs an slo section (ttft_ms, tpot_ms, e2el_ms) in {Sweep.BasePath}");
                Prepare(c, Sweep.Seeds[0], [(cap.RateKey, StartRate(c, cap))], validate: true);
            }
            if (Sweep.Cost is { } cost && cost.PriceOf(run.Gpu.Name) is null)
                throw new UserInputException($"{Sweep.Path}: cost.usd_per_gpu_hour: no price for GPU '{run.Gpu.Name}' (configuration {c.Id}: {c.Describe(Sweep.Axes)})");
        }
    }

    /// <summary>
    /// Runs configurations on up to <paramref name="jobs"/> threads, committing each to the store as it finishes
    /// (handed out one at a time in config_id order); the first user error stops the run and is rethrown as is.
    /// </summary>
    public void RunAll(SweepStore store, IReadOnlyList<SweepConfiguration> pending, int jobs, Action onDone)
    {
        var source = Partitioner.Create(pending, EnumerablePartitionerOptions.NoBuffering);
        try
        {
            Parallel.ForEach(source, new ParallelOptions { MaxDegreeOfParallelism = jobs }, c =>
            {
                store.Commit(c.Id, Columns, Run(c));
                onDone();
            });
        }
        catch (AggregateException e) when (e.InnerExceptions.FirstOrDefault(x => x is UserInputException) is { } user)
        {
            throw user;
        }
    }

    /// <summary>The result rows of one configuration, one per seed, keyed by column name.</summary>
    public List<object?[]> Run(SweepConfiguration c)
    {
        var rows = new List<Dictionary<string, object?>>();
        var maxRates = new List<double>();
        foreach (var seed in Sweep.Seeds)
        {
            var values = new Dictionary<string, object?>();
            RunSummary summary;
            PreparedRun run;
            if (Sweep.Capacity is { } cap)
            {
                var (answer, atMax, r) = Capacity(c, seed, cap);
                summary = atMax;
                run = r;
                maxRates.Add(answer.MaxRate);
                values[SweepColumns.MaxRate] = answer.MaxRate;
                values[SweepColumns.GpusPerReplica] = run.Scenario.Hardware.TensorParallel;
                values[SweepColumns.GpusForTarget] = cap.TargetRate is { } target
                    ? CapacityPlanning.GpusForTarget(answer.MaxRate, run.Scenario.Hardware.Replicas, run.Scenario.Hardware.TensorParallel, target)
                    : null;
                values[SweepColumns.Converged] = answer.Converged;
                values[SweepColumns.HorizonS] = summary.Duration;
                values[SweepColumns.RequestsUsed] = answer.Requests;
            }
            else
            {
                run = Prepare(c, seed, [], validate: false);
                summary = ScenarioRunner.Simulate(run, c.Variant).Summary;
            }
            if (Sweep.Cost is { } cost)
            {
                int gpus = run.Scenario.Hardware.Replicas * run.Scenario.Hardware.TensorParallel;
                values[SweepColumns.UsdPerMillionTokens] = CapacityPlanning.UsdPerMillionTokens(gpus, cost.PriceOf(run.Gpu.Name)!.Value, OutputThroughput(summary));
            }
            foreach (var (col, get) in SweepColumns.Summary) values[col.Name] = get(summary);
            foreach (var (col, get) in SweepColumns.PercentileColumns(Sweep.Percentiles)) values[col.Name] = get(summary);
            for (int i = 0; i < Sweep.Axes.Count; i++)
                values[Sweep.Axes[i].Key] = Sweep.Axes[i].Numeric ? c.Point[i].Number : c.Point[i].Text;
            values[SweepColumns.ConfigId] = c.Id;
            values[SweepColumns.Seed] = (long)seed;
            rows.Add(values);
        }
        if (Sweep.Capacity is not null)
        {
            var (low, high) = ConfidenceInterval(maxRates);
            foreach (var values in rows) { values[SweepColumns.CiLow] = low; values[SweepColumns.CiHigh] = high; }
        }
        return rows.Select(values => Columns.Select(col => values[col.Name]).ToArray()).ToList();
    }

    /// <summary>
    /// Output tokens per second in steady state (the capacity rate's sustained throughput, warm-up and drain left
    /// out), or over the whole run when there is no steady window.
    /// </summary>
    private static double OutputThroughput(RunSummary s) =>
        s.SteadyState is { RequestThroughput: > 0 } w ? w.OutputThroughput : s.OutputThroughput;

    /// <summary>The 95% Student-t interval of the mean capacity over the seeds; null for one seed.</summary>
    public static (double? Low, double? High) ConfidenceInterval(IReadOnlyList<double> rates)
    {
        if (rates.Count < 2) return (null, null);
        double mean = rates.Mean(), sd = rates.StandardDeviation();
        double half = StudentT.InvCDF(0, 1, rates.Count - 1, 0.975) * sd / Math.Sqrt(rates.Count);
        return (mean - half, mean + half);
    }

    /// <summary>
    /// The capacity search on the rate key, at horizons that grow until the answer settles
    /// (<see cref="CapacitySearch.FindConverged"/>). Each probe first runs a pilot (the first pilot_fraction of the
    /// requests, same arrivals): a pilot that is already unstable fails the rate without the full run.
    /// </summary>
    private (ConvergedCapacity Answer, RunSummary AtMax, PreparedRun Run) Capacity(SweepConfiguration c, int seed, CapacitySpec cap)
    {
        var full = new Dictionary<(double, int), (RunSummary, PreparedRun)>();
        var outcomes = new Dictionary<(double, int), ProbeOutcome>();
        var baseRun = Prepare(c, seed, [(cap.RateKey, StartRate(c, cap))], validate: false);
        int baseRequests = baseRun.Scenario.Workload?.Requests ?? baseRun.Scenario.ReplayRequests?.Count ?? 0;

        PreparedRun WithRequests(PreparedRun run, int requests) =>
            run.Scenario.Workload is { } w && w.Requests != requests
                ? run with { Scenario = run.Scenario with { Workload = w with { Requests = requests } } }
                : run;
        (RunSummary, PreparedRun) FullRun(double rate, int requests)
        {
            if (!full.TryGetValue((rate, requests), out var r))
            {
                var run = WithRequests(Prepare(c, seed, [(cap.RateKey, rate)], validate: false), requests);
                full[(rate, requests)] = r = (ScenarioRunner.Simulate(run, c.Variant).Summary, run);
            }
            return r;
        }
        ProbeOutcome Probe(double rate, int requests)
        {
            if (outcomes.TryGetValue((rate, requests), out var known)) return known;
            ProbeOutcome outcome;
            if (PilotFails(rate, requests)) outcome = new ProbeOutcome(false, [], 0, 0);
            else
            {
                var s = FullRun(rate, requests).Item1;
                var w = s.SteadyState;
                outcome = new ProbeOutcome(MeetsObjective(s, cap), Figures(s, cap), w is null ? 0 : w.EndS - w.StartS, w?.P99ServiceS ?? 0);
            }
            return outcomes[(rate, requests)] = outcome;
        }
        bool PilotFails(double rate, int requests)
        {
            if (cap.PilotFraction <= 0) return false;
            var run = Prepare(c, seed, [(cap.RateKey, rate)], validate: false);
            if (run.Scenario.Workload is not { Arrival.IsClosed: false }) return false;
            int pilot = Math.Max(100, (int)Math.Ceiling(requests * cap.PilotFraction));
            return pilot < requests && ScenarioRunner.Simulate(WithRequests(run, pilot), c.Variant).Summary.Unstable;
        }

        var options = new CapacitySearchOptions(StartRate(c, cap), cap.MinRate, cap.MaxRate, cap.Tolerance, cap.MaxProbes);
        // A trace's requests are what they are: one horizon, and the answer says it was not checked for convergence.
        bool canGrow = baseRun.Scenario.Workload is not null && cap.Convergence is not null;
        int maxRequests = !canGrow ? baseRequests
            : cap.Convergence!.MaxRequests ?? (int)Math.Min(int.MaxValue, 32L * baseRequests);
        var settle = cap.Convergence ?? CapacityConvergence.Default;
        var convergence = new ConvergenceOptions(baseRequests, Math.Max(baseRequests, maxRequests), settle.MaxChange, settle.MinServiceTimes, settle.ServiceTimes);
        var answer = CapacitySearch.FindConverged(Probe, options, convergence);
        var (summary, at) = FullRun(answer.MaxRate > 0 ? answer.MaxRate : cap.MinRate, answer.Requests);
        return (answer, summary, at);
    }

    /// <summary>Stable, enough requests within the scenario's SLO, and every latency limit met, over the steady window.</summary>
    public static bool MeetsObjective(RunSummary s, CapacitySpec cap)
    {
        if (s.Unstable || s.SloMet == false) return false;
        if (cap.GoodputFraction is { } g)
        {
            if (!(GoodputFraction(s) is { } f && f >= g - 1e-9)) return false;
        }
        foreach (var (metric, limit) in cap.MaxMetrics)
            if (!(SweepColumns.SteadyMetric(s, metric) is { } v && v <= limit)) return false;
        return true;
    }

    /// <summary>Share of requests within the scenario's slo: over the steady window, or the whole run without one.</summary>
    private static double? GoodputFraction(RunSummary s)
    {
        if (s.SteadyState?.GoodputFraction is { } steady) return steady;
        int total = s.Completed + s.Rejected;
        return total == 0 ? null : (s.RequestGoodput ?? 0) * s.Duration / total;
    }

    /// <summary>The numbers a capacity answer rests on, which must settle as the horizon grows.</summary>
    private List<double> Figures(RunSummary s, CapacitySpec cap)
    {
        var figures = new List<double>();
        if (cap.GoodputFraction is not null) figures.Add(GoodputFraction(s) ?? double.NaN);
        foreach (var (metric, _) in cap.MaxMetrics) figures.Add(SweepColumns.SteadyMetric(s, metric) ?? double.NaN);
        if (Sweep.Cost is not null) figures.Add(SweepColumns.SteadyMetric(s, Sweep.ParetoLatency) ?? double.NaN);
        return figures;
    }

    private double StartRate(SweepConfiguration c, CapacitySpec cap)
    {
        if (cap.StartRate is { } s) return s;
        var tree = (ConfigMap)Sweep.BaseTree.Clone();
        for (int i = 0; i < Sweep.Axes.Count; i++)
            tree.SetPath(Sweep.Axes[i].Key, ConfigNode.ParseValue(c.Point[i].Text), AxisSource(Sweep.Axes[i]));
        ConfigNode? node = tree;
        foreach (var part in cap.RateKey.Split('.')) node = (node as ConfigMap)?.Get(part);
        if (node is ConfigScalar sc && double.TryParse(sc.Value, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) && v > 0)
            return v;
        throw new UserInputException($"{Sweep.Path}: capacity.start_rate: is required, the base scenario has no positive number at {cap.RateKey}");
    }

    private string AxisSource(Axis a) => $"{Sweep.Path}: axes.{a.Key}";

    private UserInputException Error(SweepConfiguration c, string message) =>
        new($"{Sweep.Path}: configuration {c.Id} ({c.Describe(Sweep.Axes)}): {message}");

    private PreparedRun Prepare(SweepConfiguration c, int seed, IEnumerable<(string Key, double Value)> extra, bool validate)
    {
        var overrides = Sweep.Axes.Select((a, i) => (a.Key, ConfigNode.ParseValue(c.Point[i].Text), AxisSource(a)))
            .Concat(extra.Select(e => (e.Key, (ConfigNode)new ConfigScalar(e.Value.ToString("R", CultureInfo.InvariantCulture)), $"{Sweep.Path}: capacity.rate_key")));
        try
        {
            var file = ScenarioLoader.Expand(Sweep.BasePath, (ConfigMap)Sweep.BaseTree.Clone(), overrides, seed);
            var one = new ScenarioFile(file.Path, file.Name, [file.Runs[c.VariantIndex]], file.HasVariants);
            return ScenarioRunner.Prepare(one, _inputs)[0];
        }
        catch (Exception e) when (validate && e is UserInputException or CatalogException)
        {
            throw Error(c, e.Message);
        }
    }
}
