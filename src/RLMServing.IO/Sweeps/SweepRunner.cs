using System.Collections.Concurrent;
using System.Globalization;
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
        var rows = new List<object?[]>();
        foreach (var seed in Sweep.Seeds)
        {
            var values = new Dictionary<string, object?>();
            RunSummary summary;
            PreparedRun run;
            if (Sweep.Capacity is { } cap)
            {
                var (maxRate, atMax, r) = Capacity(c, seed, cap);
                summary = atMax;
                run = r;
                values[SweepColumns.MaxRate] = maxRate;
                values[SweepColumns.GpusPerReplica] = run.Scenario.Hardware.TensorParallel;
                values[SweepColumns.GpusForTarget] = cap.TargetRate is { } target
                    ? CapacityPlanning.GpusForTarget(maxRate, run.Scenario.Hardware.Replicas, run.Scenario.Hardware.TensorParallel, target)
                    : null;
            }
            else
            {
                run = Prepare(c, seed, [], validate: false);
                summary = ScenarioRunner.Simulate(run, c.Variant).Summary;
            }
            if (Sweep.Cost is { } cost)
            {
                int gpus = run.Scenario.Hardware.Replicas * run.Scenario.Hardware.TensorParallel;
                values[SweepColumns.UsdPerMillionTokens] = CapacityPlanning.UsdPerMillionTokens(gpus, cost.PriceOf(run.Gpu.Name)!.Value, summary.OutputThroughput);
            }
            foreach (var (col, get) in SweepColumns.Summary) values[col.Name] = get(summary);
            for (int i = 0; i < Sweep.Axes.Count; i++)
                values[Sweep.Axes[i].Key] = Sweep.Axes[i].Numeric ? c.Point[i].Number : c.Point[i].Text;
            values[SweepColumns.ConfigId] = c.Id;
            values[SweepColumns.Seed] = (long)seed;
            rows.Add(Columns.Select(col => values[col.Name]).ToArray());
        }
        return rows;
    }

    /// <summary>
    /// Bracketing and bisection on the rate key. Each probe first runs a pilot (the first pilot_fraction of the
    /// requests, same arrivals): a pilot that is already unstable fails the rate without the full run.
    /// </summary>
    private (double MaxRate, RunSummary AtMax, PreparedRun Run) Capacity(SweepConfiguration c, int seed, CapacitySpec cap)
    {
        var full = new Dictionary<double, (RunSummary, PreparedRun)>();
        (RunSummary, PreparedRun) FullRun(double rate)
        {
            if (!full.TryGetValue(rate, out var r))
            {
                var run = Prepare(c, seed, [(cap.RateKey, rate)], validate: false);
                full[rate] = r = (ScenarioRunner.Simulate(run, c.Variant).Summary, run);
            }
            return r;
        }
        bool Meets(double rate)
        {
            if (cap.PilotFraction > 0)
            {
                var run = Prepare(c, seed, [(cap.RateKey, rate)], validate: false);
                if (run.Scenario.Workload is { Arrival: not RLMServing.Workloads.ClosedLoopArrivals } w)
                {
                    int pilot = Math.Max(100, (int)Math.Ceiling(w.Requests * cap.PilotFraction));
                    if (pilot < w.Requests)
                    {
                        var pilotRun = run with { Scenario = run.Scenario with { Workload = w with { Requests = pilot } } };
                        if (ScenarioRunner.Simulate(pilotRun, c.Variant).Summary.Unstable) return false;
                    }
                }
            }
            return MeetsObjective(FullRun(rate).Item1, cap);
        }
        var options = new CapacitySearchOptions(StartRate(c, cap), cap.MinRate, cap.MaxRate, cap.Tolerance, cap.MaxProbes);
        var result = CapacitySearch.Find(Meets, options);
        var (summary, at) = FullRun(result.MaxRate > 0 ? result.MaxRate : cap.MinRate);
        return (result.MaxRate, summary, at);
    }

    /// <summary>Stable, enough requests within the scenario's SLO, and every latency limit met.</summary>
    public static bool MeetsObjective(RunSummary s, CapacitySpec cap)
    {
        if (s.Unstable) return false;
        if (cap.GoodputFraction is { } g)
        {
            int total = s.Completed + s.Rejected;
            double good = (s.RequestGoodput ?? 0) * s.Duration;
            if (total == 0 || good / total < g - 1e-9) return false;
        }
        foreach (var (metric, limit) in cap.MaxMetrics)
            if (!(SweepColumns.Metric(s, metric) is { } v && v <= limit)) return false;
        return true;
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
