using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using RLMServing.IO.Scenarios;
using RLMServing.Metrics;
using RLMServing.Sweeps;
using YamlDotNet.RepresentationModel;

namespace RLMServing.IO.Sweeps;

/// <summary>Reads sweep YAML strictly (unknown keys, wrong types and bad ranges name the file, key and line).</summary>
public static class SweepLoader
{
    /// <summary>Most runs (configurations x seeds) a sweep may hold unless <c>--max-configs</c> allows more.</summary>
    public const int DefaultMaxRuns = 100_000;

    /// <summary>Most seeds per configuration.</summary>
    public const int MaxSeeds = 10_000;

    /// <param name="percentiles">--metric-percentiles: replaces the base scenario's metrics.percentiles.</param>
    /// <param name="maxRuns">Most configurations x seeds accepted (<c>--max-configs</c>); the sweep is counted before anything is expanded.</param>
    public static SweepFile Load(string path, IReadOnlyList<double>? percentiles = null, int maxRuns = DefaultMaxRuns)
    {
        var root = ScenarioLoader.ReadTree(path);
        var r = new MapReader(root, path, "");
        var name = r.String("name") ?? System.IO.Path.GetFileNameWithoutExtension(path);
        if (r.Has("name")) Results.OutputPath.CheckName(name, $"{path}: name (line {root.Get("name")!.Line})");
        r.String("description");
        var baseRel = r.RequiredString("base");
        var basePath = System.IO.Path.GetFullPath(System.IO.Path.Combine(System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path)) ?? ".", baseRel));
        if (!File.Exists(basePath)) throw r.Error("base", $"scenario file not found: {basePath}");
        var baseTree = ScenarioLoader.ReadTree(basePath);
        // set: fixed overrides for every configuration (request count, SLO, ...), applied to the base like --set.
        if (r.Map("set") is { } setR)
        {
            foreach (var (key, value) in ((ConfigMap)root.Get("set")!).Entries)
            {
                setR.Raw(key);
                if (key == "variants" || key.StartsWith("variants.", StringComparison.Ordinal)) throw setR.Error(key, "variants cannot be overridden");
                baseTree.SetPath(key, value.Clone(), $"{path}: set.{key}");
            }
            setR.Done();
        }

        var axes = new List<Axis>();
        if (r.Map("axes") is { } axesR)
        {
            foreach (var (key, node) in ((ConfigMap)root.Get("axes")!).Entries)
                axes.Add(BindAxis(axesR, key, node));
            axesR.Done();
        }
        var sampling = BindSampling(r.Map("sampling"));
        if (sampling.Method == SamplingMethod.Grid)
            foreach (var a in axes.OfType<RangeAxis>().Where(a => a.Step is null && a.Points is null))
                throw new UserInputException($"{path}: axes.{a.Key}: a grid needs 'step' or 'points' for a range (or use sampling: {{ method: random|latin_hypercube, samples: N }})");

        var seeds = BindSeeds(r, baseTree);
        CheckSize(path, axes, sampling, baseTree, seeds.Count, maxRuns);
        var capacity = r.Map("capacity") is { } c ? BindCapacity(c) : null;
        if (capacity is not null && axes.Any(a => a.Key == capacity.RateKey))
            throw new UserInputException($"{path}: capacity.rate_key: '{capacity.RateKey}' is also an axis; the capacity search sets it");
        var cost = r.Map("cost") is { } co ? BindCost(co) : null;
        string pareto = "p99_e2el_ms";
        if (r.Map("pareto") is { } p)
        {
            pareto = p.String("latency") ?? pareto;
            if (!SweepColumns.IsNumericSummaryMetric(pareto)) throw p.Error("latency", $"'{pareto}' is not a numeric summary metric (e.g. p99_e2el_ms, p90_ttft_ms)");
            if (cost is null) throw p.Error("latency", "the Pareto frontier is cost against latency: give a cost section");
            p.Done();
        }
        r.Done();

        if (axes.FirstOrDefault(a => a.Key == "metrics" || a.Key.StartsWith("metrics.percentiles", StringComparison.Ordinal)) is { } pa)
            throw new UserInputException($"{path}: axes.{pa.Key}: the percentiles are one list for the whole sweep (they are results.parquet's columns); set metrics.percentiles in the base or with --metric-percentiles");
        var wanted = SweepPercentiles(path, baseTree, basePath, capacity, percentiles);
        // Every configuration computes the same keys: the list goes into the base scenario.
        baseTree.SetPath("metrics.percentiles", new ConfigList(wanted.Select(p => (ConfigNode)new ConfigScalar(MetricPercentiles.Word(p))), 0), $"{path}: metrics.percentiles");

        var fingerprint = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(
            Canonical(root) + "\n" + Canonical(baseTree))))[..16];
        return new SweepFile(path, name, basePath, baseTree, axes, sampling, seeds, capacity, cost, pareto, fingerprint) { Percentiles = wanted };
    }

    /// <summary>The base's metrics.percentiles (or --metric-percentiles, or the default) with the percentiles the SLOs name.</summary>
    private static IReadOnlyList<double> SweepPercentiles(string path, ConfigMap baseTree, string basePath, CapacitySpec? capacity, IReadOnlyList<double>? given)
    {
        var list = given;
        if (list is null && baseTree.Get("metrics") is ConfigMap metrics)
            list = ScenarioLoader.BindPercentiles(new MapReader(metrics, basePath, "metrics"), "percentiles");
        var keys = new List<string>();
        if (baseTree.Get("slo") is ConfigMap slo) keys.AddRange(slo.Entries.Select(e => e.Key));
        if (capacity is not null) keys.AddRange(capacity.MaxMetrics.Select(m => m.Metric));
        return MetricPercentiles.WithKeys(list ?? MetricPercentiles.Default, keys);
    }

    /// <summary>The design without names and comments: name, description and line numbers do not change the results.</summary>
    private static string Canonical(ConfigMap tree)
    {
        var copy = (ConfigMap)tree.Clone();
        copy.Entries.RemoveAll(e => e.Key is "name" or "description");
        return copy.ToFlowText();
    }

    private static Axis BindAxis(MapReader axes, string key, ConfigNode node)
    {
        axes.Raw(key);
        var parts = key.Split('.');
        if (parts.Any(string.IsNullOrWhiteSpace)) throw axes.Error(key, "is not a dotted scenario key", node);
        if (key == "seed") throw axes.Error(key, "seeds are not an axis; use the top-level 'seeds' (a count or a list)", node);
        if (parts[0] == "variants") throw axes.Error(key, "variants cannot be swept; every variant of the base scenario is run at each point", node);
        switch (node)
        {
            case ConfigList list:
                if (list.Items.Count == 0) throw axes.Error(key, "expected at least one value", node);
                return new ListAxis(key, list.Items.Select(ValueOf).ToList());
            case ConfigMap map:
                return BindRange(new MapReader(map, axes.File, axes.KeyPath(key)), key);
            default:
                throw axes.Error(key, "expected a list of values or a range { from, to, step | points, scale }", node);
        }
    }

    private static AxisValue ValueOf(ConfigNode n)
    {
        if (n is ConfigScalar { Quoted: false } s && double.TryParse(s.Value, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) && double.IsFinite(d))
            return new AxisValue(s.Value, d);
        return new AxisValue(n.ToFlowText(), null);
    }

    private static RangeAxis BindRange(MapReader m, string key)
    {
        double from = m.Double("from") ?? throw m.Error("from", "is required for a range");
        double to = m.Double("to") ?? throw m.Error("to", "is required for a range");
        double? step = m.Has("step") ? m.PositiveDouble("step") : null;
        int? points = m.Has("points") ? m.PositiveInt("points") : null;
        bool log = m.Enum("scale", false, ("linear", false), ("log", true));
        if (to < from) throw m.Error("to", $"must be at least from ({from.ToString(CultureInfo.InvariantCulture)})");
        if (step is not null && points is not null) throw m.Error("points", "give step or points, not both");
        if (log && step is not null) throw m.Error("step", "a log-scale range takes points, not step");
        if (log && !(from > 0)) throw m.Error("from", "must be greater than 0 on a log scale");
        // Whole-number bounds (and step) written without a decimal point make an integer axis (batch sizes, replicas).
        bool integer = new[] { "from", "to", "step" }.All(k => m.Raw(k) is not ConfigScalar s || IsWhole(s.Value));
        m.Done();
        return new RangeAxis(key, from, to, step, points, log, integer);
    }

    private static bool IsWhole(string text) => long.TryParse(text.Replace("_", ""), NumberStyles.Integer, CultureInfo.InvariantCulture, out _);

    private static Sampling BindSampling(MapReader? s)
    {
        if (s is null) return Sampling.Grid;
        var method = s.Enum("method", SamplingMethod.Grid, ("grid", SamplingMethod.Grid), ("random", SamplingMethod.Random), ("latin_hypercube", SamplingMethod.LatinHypercube));
        Sampling result;
        if (method == SamplingMethod.Grid)
        {
            if (s.Has("samples")) throw s.Error("samples", "a grid takes every combination; samples is for random and latin_hypercube");
            result = Sampling.Grid;
        }
        else result = new Sampling(method, s.PositiveInt("samples"), s.Int("seed") ?? 0);
        s.Done();
        return result;
    }

    /// <summary>
    /// Counts the sweep's runs from the axes' sizes before any configuration exists: grid points (or samples) x the
    /// base scenario's variants x seeds, refused past <paramref name="maxRuns"/> with the count it would be.
    /// </summary>
    private static void CheckSize(string path, IReadOnlyList<Axis> axes, Sampling sampling, ConfigMap baseTree, int seeds, int maxRuns)
    {
        static double GridCount(Axis a) => a switch
        {
            ListAxis l => l.Values.Count,
            RangeAxis { Step: { } step } ra => Math.Floor((ra.To - ra.From) / step + 1e-9) + 1,
            RangeAxis { Points: { } points } => points,
            _ => 1,
        };
        double points = sampling.Method == SamplingMethod.Grid ? axes.Aggregate(1.0, (p, a) => p * GridCount(a)) : sampling.Samples;
        int variants = baseTree.Get("variants") is ConfigList { Items.Count: > 0 } v ? v.Items.Count : 1;
        double runs = points * variants * seeds;
        if (!(runs <= maxRuns))
            throw new UserInputException(string.Create(CultureInfo.InvariantCulture,
                $"{path}: the sweep would be {runs:N0} runs ({points:N0} points x {variants} variant(s) x {seeds} seed(s)); at most {maxRuns:N0} (raise with --max-configs; docs/limits.md)"));
    }

    private static IReadOnlyList<int> BindSeeds(MapReader r, ConfigMap baseTree)
    {
        int baseSeed = 0;
        if (baseTree.Get("seed") is ConfigScalar bs && int.TryParse(bs.Value, NumberStyles.Integer, CultureInfo.InvariantCulture, out var b)) baseSeed = b;
        var node = r.Raw("seeds");
        switch (node)
        {
            case null:
                return [baseSeed];
            case ConfigList list:
            {
                var seeds = new List<int>();
                foreach (var item in list.Items)
                {
                    if (item is not ConfigScalar s || !int.TryParse(s.Value, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v))
                        throw r.Error("seeds", $"expected whole numbers, got '{item.ToFlowText()}'", item);
                    if (seeds.Contains(v)) throw r.Error("seeds", $"seed {v} is listed twice", item);
                    seeds.Add(v);
                }
                if (seeds.Count == 0) throw r.Error("seeds", "expected at least one seed", node);
                return seeds;
            }
            default:
                int n = r.PositiveInt("seeds");
                if (n > MaxSeeds) throw r.Error("seeds", string.Create(CultureInfo.InvariantCulture, $"{n:N0} seeds; at most {MaxSeeds:N0} per configuration (docs/limits.md)"), node);
                // N seeds: the base scenario's seed and the N - 1 after it.
                return Enumerable.Range(0, n).Select(i => baseSeed + i).ToList();
        }
    }

    private static CapacitySpec BindCapacity(MapReader c)
    {
        var rateKey = c.String("rate_key") ?? "workload.arrival.rate";
        double? start = c.Has("start_rate") ? c.PositiveDouble("start_rate") : null;
        double min = c.PositiveDouble("min_rate", 0.01);
        double max = c.PositiveDouble("max_rate", 10_000);
        if (max < min) throw c.Error("max_rate", $"must be at least min_rate ({min.ToString(CultureInfo.InvariantCulture)})");
        double tol = c.PositiveDouble("tolerance", 0.02);
        int probes = c.PositiveInt("max_probes", 30);
        double pilot = c.Fraction("pilot_fraction", 0.2, allowZero: true);
        double? target = c.Has("target_rate") ? c.PositiveDouble("target_rate") : null;
        var sloR = c.Map("slo") ?? throw c.Error("slo", "is required: goodput_fraction and/or summary-metric limits such as p99_ttft_ms");
        double? goodput = sloR.Has("goodput_fraction") ? sloR.Fraction("goodput_fraction", 1, allowZero: false) : null;
        var limits = new List<(string, double)>();
        var sloMap = (ConfigMap)((ConfigMap)c.Raw("slo")!);
        foreach (var (key, _) in sloMap.Entries)
        {
            if (key == "goodput_fraction") continue;
            if (!key.EndsWith("_ms", StringComparison.Ordinal) || key.StartsWith(SweepColumns.SteadyPrefix, StringComparison.Ordinal) || !SweepColumns.IsNumericSummaryMetric(key))
                throw sloR.Error(key, "expected goodput_fraction or a latency metric of summary.json ending in _ms (e.g. p95_ttft_ms, p99.9_tpot_ms, mean_e2el_ms)");
            limits.Add((key, sloR.PositiveDouble(key)));
        }
        if (goodput is null && limits.Count == 0) throw c.Error("slo", "give goodput_fraction and/or at least one latency limit");
        sloR.Done();
        var convergence = BindConvergence(c);
        c.Done();
        return new CapacitySpec(rateKey, start, min, max, tol, probes, pilot, goodput, limits, target) { Convergence = convergence };
    }

    /// <summary>capacity.convergence: a mapping, or false to probe at workload.requests only.</summary>
    private static CapacityConvergence? BindConvergence(MapReader c)
    {
        var node = c.Raw("convergence");
        var d = CapacityConvergence.Default;
        if (node is null) return d;
        if (node is ConfigScalar) return c.Bool("convergence") == true ? d : null;
        var m = c.Map("convergence")!;
        int? maxRequests = m.Has("max_requests") ? m.PositiveInt("max_requests") : null;
        double change = m.Fraction("max_change", d.MaxChange, allowZero: false);
        double minServiceTimes = m.PositiveDouble("min_service_times", d.MinServiceTimes);
        double serviceTimes = m.PositiveDouble("service_times", d.ServiceTimes);
        if (serviceTimes < minServiceTimes) throw m.Error("service_times", $"must be at least min_service_times ({minServiceTimes.ToString(CultureInfo.InvariantCulture)})");
        m.Done();
        return new CapacityConvergence(maxRequests, change, minServiceTimes, serviceTimes);
    }

    private static CostSpec BindCost(MapReader c)
    {
        var node = c.Raw("usd_per_gpu_hour") ?? throw c.Error("usd_per_gpu_hour", "is required: one price, or a price per GPU name");
        CostSpec spec;
        if (node is ConfigMap prices)
        {
            var pr = c.Map("usd_per_gpu_hour")!;
            var byGpu = new Dictionary<string, double>(StringComparer.OrdinalIgnoreCase);
            foreach (var (gpu, _) in prices.Entries) byGpu[gpu] = pr.PositiveDouble(gpu);
            pr.Done();
            spec = new CostSpec(null, byGpu);
        }
        else spec = new CostSpec(c.PositiveDouble("usd_per_gpu_hour"), new Dictionary<string, double>());
        c.Done();
        return spec;
    }
}
