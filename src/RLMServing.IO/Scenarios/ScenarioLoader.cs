using RLMServing.Catalog;
using RLMServing.Costs;
using RLMServing.Memory;
using RLMServing.Metrics;
using RLMServing.Scenarios;
using RLMServing.Simulation.Batching;
using RLMServing.Workloads;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace RLMServing.IO.Scenarios;

/// <summary>A scenario file after overrides: the base run and its named variants, each ready to bind.</summary>
public sealed record ScenarioFile(string Path, string Name, IReadOnlyList<(string Name, ConfigMap Tree)> Runs, bool HasVariants);

/// <summary>
/// Loads scenario YAML: parse, apply <c>--set</c> overrides and each variant's <c>set</c>, then bind strictly into
/// immutable records (unknown keys, wrong types and bad ranges are errors naming file, key and line).
/// </summary>
public static partial class ScenarioLoader
{
    public static ScenarioFile Load(string path, IEnumerable<string>? sets = null, int? seedOverride = null) =>
        Expand(path, ReadTree(path), Overrides(sets), seedOverride);

    /// <summary>--set dotted.key=value arguments as overrides, each naming its argument in errors (variants cannot be set).</summary>
    public static List<(string Key, ConfigNode Value, string Source)> Overrides(IEnumerable<string>? sets)
    {
        var overrides = new List<(string, ConfigNode, string)>();
        foreach (var set in sets ?? [])
        {
            int eq = set.IndexOf('=');
            if (eq <= 0) throw new UserInputException($"--set {set}: expected dotted.key=value");
            var key = set[..eq].Trim();
            if (key == "variants" || key.StartsWith("variants.", StringComparison.Ordinal))
                throw new UserInputException($"--set {set}: variants cannot be overridden from the command line");
            overrides.Add((key, ConfigNode.ParseValue(set[(eq + 1)..]), $"--set {set}"));
        }
        return overrides;
    }

    /// <summary>Parses a scenario file into its tree, before any override (sweeps parse once and expand many times).</summary>
    public static ConfigMap ReadTree(string path)
    {
        var stream = LoadYaml(path);
        if (stream.Documents.Count == 0 || stream.Documents[0].RootNode is not YamlMappingNode rootYaml)
            throw new UserInputException($"{path}: expected a mapping of scenario keys at the top level");
        return (ConfigMap)ConfigNode.FromYaml(rootYaml);
    }

    /// <summary>
    /// Applies dotted-key overrides (each with the source its errors name) and the seed to a scenario tree (which
    /// it changes: pass a clone to keep the original), then splits it into the base run and its variants.
    /// </summary>
    public static ScenarioFile Expand(string path, ConfigMap root, IEnumerable<(string Key, ConfigNode Value, string Source)> overrides, int? seedOverride)
    {
        foreach (var (key, value, source) in overrides) root.SetPath(key, value, source);
        if (seedOverride is { } seed) root.Set("seed", new ConfigScalar(seed.ToString(System.Globalization.CultureInfo.InvariantCulture)));

        var variantsNode = root.Get("variants");
        root.Entries.RemoveAll(e => e.Key == "variants");
        string name = (root.Get("name") as ConfigScalar)?.Value ?? System.IO.Path.GetFileNameWithoutExtension(path);
        if (root.Get("name") is { } nameNode) Results.OutputPath.CheckName(name, $"{path}: name (line {nameNode.Line})");
        if (variantsNode is null or ConfigScalar { IsNull: true })
            return new ScenarioFile(path, name, [(name, root)], false);
        if (variantsNode is not ConfigList list || list.Items.Count == 0)
            throw new UserInputException($"{path}: variants: expected a non-empty list of {{ name, set }} (line {variantsNode.Line})");

        var runs = new List<(string, ConfigMap)>();
        for (int i = 0; i < list.Items.Count; i++)
        {
            if (list.Items[i] is not ConfigMap vm) throw new UserInputException($"{path}: variants[{i}]: expected {{ name, set }} (line {list.Items[i].Line})");
            var v = new MapReader(vm, path, $"variants[{i}]");
            var vname = v.RequiredString("name");
            if (vname.IndexOfAny(System.IO.Path.GetInvalidFileNameChars()) >= 0 || vname is "." or "..")
                throw v.Error("name", $"'{vname}' cannot be used as a folder name");
            if (runs.Any(r => r.Item1 == vname)) throw v.Error("name", $"duplicate variant name '{vname}'");
            var tree = (ConfigMap)root.Clone();
            if (v.Map("set") is { } setReader)
            {
                var setMap = (ConfigMap)vm.Get("set")!;
                foreach (var (key, value) in setMap.Entries)
                {
                    if (key == "variants" || key.StartsWith("variants.", StringComparison.Ordinal))
                        throw new UserInputException($"{path}: variants[{i}].set.{key}: variants cannot nest");
                    tree.SetPath(key, value.Clone(), $"{path}: variants[{i}].set.{key}");
                }
                _ = setReader;
            }
            v.Done();
            runs.Add((vname, tree));
        }
        return new ScenarioFile(path, name, runs, true);
    }

    /// <summary>Keys that also answer to another engine's name for them: vLLM's <c>tensor_parallel_size</c>.</summary>
    private static readonly (string Alias, string Key)[] Aliases = [("tensor_parallel_size", "tensor_parallel")];

    /// <summary>Renames alias keys anywhere in the tree to the scenario's own; both at once is an error.</summary>
    private static void ApplyAliases(ConfigNode node, string file)
    {
        switch (node)
        {
            case ConfigMap m:
                foreach (var (alias, key) in Aliases)
                {
                    int i = m.Entries.FindIndex(e => e.Key == alias);
                    if (i < 0) continue;
                    var value = m.Entries[i].Value;
                    if (m.Get(key) is not null and not ConfigScalar { IsNull: true })
                        throw new UserInputException($"{file}: {alias} ({(value.Line > 0 ? $"line {value.Line}" : "--set")}): give {key} or {alias}, not both");
                    m.Entries.RemoveAt(i);
                    m.Set(key, value);
                }
                foreach (var e in m.Entries) ApplyAliases(e.Value, file);
                break;
            case ConfigList l:
                foreach (var item in l.Items) ApplyAliases(item, file);
                break;
        }
    }

    /// <summary>Binds one run's tree into a scenario, checking names against the catalog and that the model fits.</summary>
    public static Scenario Bind(ConfigMap tree, string file, HardwareCatalog catalog) => Bind(tree, file, new ScenarioInputs(catalog));

    /// <summary>Binds one run's tree with files read through <paramref name="inputs"/> (each read once per instance).</summary>
    public static Scenario Bind(ConfigMap tree, string file, ScenarioInputs inputs)
    {
        var catalog = inputs.Catalog;
        ApplyAliases(tree, file);
        var r = new MapReader(tree, file, "");
        var name = r.String("name") ?? System.IO.Path.GetFileNameWithoutExtension(file);
        r.String("description");
        int seed = r.Int("seed") ?? 0;

        var clusterR = r.Map("cluster");
        bool groupsGiven = clusterR?.Has("groups") ?? false;
        var hwR = r.Map("hardware");
        if (groupsGiven && hwR is not null) throw r.Error("hardware", "give either hardware or cluster.groups, not both");
        // With cluster.groups, hardware stands for the first group (GPU, tensor parallelism) and the total replica count.
        var hardware = groupsGiven ? FirstGroupHardware(clusterR!, file, catalog) : null;
        if (hwR is null && !groupsGiven) throw r.Error("hardware", "is required (or cluster.groups)");
        if (hwR is not null)
        {
            hardware = new HardwareConfig(hwR.RequiredString("gpu"), hwR.PositiveInt("replicas", 1), hwR.PositiveInt("tensor_parallel", 1),
                hwR.Bool("expert_parallel") ?? false);
            hwR.Done();
        }
        GpuSpec gpu;
        try { gpu = catalog.Gpu(hardware!.Gpu); }
        catch (CatalogException e) { throw (hwR ?? r).Error(hwR is null ? "cluster" : "gpu", e.Message); }

        var modelName = r.RequiredString("model");
        ModelArchitecture model;
        try { model = catalog.Model(modelName); }
        catch (CatalogException e) { throw r.Error("model", e.Message); }

        if (hardware.ExpertParallel)
        {
            if (!model.IsMoe) throw hwR!.Error("expert_parallel", $"{model.Name} is not a mixture of experts (no experts in its catalog entry)");
            if (hardware.Replicas < 2) throw hwR!.Error("expert_parallel", "needs replicas >= 2: experts are spread over the data-parallel replicas");
            if (model.Experts % hardware.Replicas != 0) throw hwR!.Error("expert_parallel", $"{model.Experts} experts do not split evenly over {hardware.Replicas} replicas");
        }
        var cost = BindCostModel(r.Map("cost_model"), file, model, gpu, hardware.TensorParallel, inputs);
        var engineRead = ReadEngine(r);
        var defaults = DefaultsFor(engineRead.Name, model, gpu);
        var schedulerTree = tree.Get("scheduler") as ConfigMap;
        var scheduler = BindScheduler(r.Map("scheduler"), defaults);
        var kv = BindKvCache(r.Map("kv_cache"), defaults);
        var slo = BindSlo(r.Map("slo"), tree.Get("slo") as ConfigMap);
        var metricsR = r.Map("metrics");
        var metrics = new MetricsConfig(metricsR?.PositiveDouble("timeseries_interval_s", 1.0) ?? 1.0);
        if (metricsR is not null && BindPercentiles(metricsR, "percentiles") is { } percentiles) metrics = metrics with { Percentiles = percentiles };
        metricsR?.Done();
        var simR = r.Map("simulation");
        var simulation = new SimulationConfig(simR?.Bool("fast_forward") ?? true);
        simR?.Done();
        var workloadR = r.Map("workload") ?? throw r.Error("workload", "is required");
        var systemPrompt = BindSystemPrompt(workloadR);
        // workload.trace replays a request trace and workload.dataset samples a reasoning preset (ScenarioLoader.Workloads.cs).
        var replay = BindTraceOrDataset(workloadR, model, file, seed, out var datasetBatches);
        var workload = replay is null ? BindWorkload(workloadR, model) : null;
        var policies = BindPolicies(tree, r, file, model, inputs);
        r.Done();

        ClusterConfig? cluster = null;
        if (clusterR is not null)
        {
            (cluster, scheduler) = BindCluster(clusterR, schedulerTree, scheduler, file, catalog, model, kv, cost, workload?.Arrival.IsClosed == true || datasetBatches is not null,
                policies.Speculative?.Memory, defaults);
            if (cluster.Groups.Count > 0) hardware = hardware with { Replicas = cluster.Groups.Sum(g => g.Replicas) };
            if (cluster.Disaggregated && (workload is { Samples: > 1 } || replay is not null && ParallelSampling.Sampled(replay)))
                throw new UserInputException($"{file}: workload.n: parallel sampling is not supported with disaggregated prefill/decode pools");
        }
        // Serving policies apply to clusters of replica groups too (each replica runs them).
        var engine = CompleteEngine(engineRead, scheduler);
        // hardware: is a cluster of one group, checked by the same code as each of cluster.groups.
        if (hwR is not null) BindGroup(hwR, "default", ReplicaRole.Both, scheduler, "scheduler", file, catalog, model, kv, cost, policies.Speculative?.Memory);
        return new Scenario(name, seed, hardware, model.Name, cost, workload, replay, scheduler, kv, slo, metrics, simulation, WithBlockSize(policies, kv)) { Cluster = cluster, SystemPrompt = systemPrompt, Engine = engine, DatasetBatches = datasetBatches };
    }

    private static CostModelConfig BindCostModel(MapReader? c, string scenarioFile, ModelArchitecture model, GpuSpec gpu, int tp, ScenarioInputs inputs)
    {
        if (c is null) return new CostModelConfig("roofline", null, 0.6, 0.85, 1.0, 10);
        var kind = c.String("kind") ?? "roofline";
        if (kind == "calibrated")
        {
            var relative = c.RequiredString("file");
            var path = Path.GetFullPath(Path.Combine(Path.GetDirectoryName(Path.GetFullPath(scenarioFile)) ?? ".", relative));
            RLMServing.Calibration.CalibrationFile cal;
            try { cal = inputs.Calibration(path); }
            catch (UserInputException e) { throw c.Error("file", e.Message); }
            if (!string.Equals(cal.Model, model.Name, StringComparison.OrdinalIgnoreCase))
                throw c.Error("file", $"{path} is calibrated for model '{cal.Model}', the scenario runs '{model.Name}'");
            if (cal.TensorParallel != tp)
                throw c.Error("file", $"{path} is calibrated for tensor_parallel {cal.TensorParallel}, the scenario uses {tp}");
            if (!string.Equals(cal.Gpu, gpu.Name, StringComparison.OrdinalIgnoreCase))
                throw c.Error("file", $"{path} is calibrated on '{cal.Gpu}', the scenario's GPU is '{gpu.Name}'");
            var calls = IterationCallsOf(c);
            double host = c.Has("host_overhead_us") ? c.NonNegativeDouble("host_overhead_us", 0) : cal.HostOverhead?.PerIterationUs ?? 0;
            var (curve, curveFile, curveRead) = BindSlowdown(c, scenarioFile, cal, inputs);
            c.Done();
            return new CostModelConfig(kind, path, 0.6, 0.85, 1.0, 10, cal, calls) { HostOverheadUs = host, Slowdown = curve, SlowdownFile = curveFile, SlowdownRead = curveRead };
        }
        if (kind != "roofline")
            throw c.Error("kind", $"unknown cost model '{kind}'; supported: roofline, calibrated");
        var cfg = new CostModelConfig(kind, null,
            c.Fraction("compute_efficiency", 0.6, allowZero: false),
            c.Fraction("bandwidth_efficiency", 0.85, allowZero: false),
            c.NonNegativeDouble("step_overhead_ms", 1.0),
            c.NonNegativeDouble("allreduce_latency_us", 10)) { Calls = IterationCallsOf(c), HostOverheadUs = c.NonNegativeDouble("host_overhead_us", 0) };
        var (slowdown, slowdownFile, slowdownRead) = BindSlowdown(c, scenarioFile, null, inputs);
        c.Done();
        return cfg with { Slowdown = slowdown, SlowdownFile = slowdownFile, SlowdownRead = slowdownRead };
    }

    /// <summary>
    /// cost_model.slowdown: a number (a constant factor on every priced iteration), or
    /// { file: PATH, window_s: S, reference: file | calibration } — a machine-speed series (SlowdownFile), the path
    /// relative to the scenario file, averaged into windows of S seconds (default 2; 0 keeps every row). reference:
    /// file takes the file's slowdown column; calibration prices an interleaved profile's visits against the scenario's
    /// calibration (<paramref name="calibration"/>; kind: calibrated only).
    /// </summary>
    private static (Slowdown? Curve, string? File, (double WindowS, string Reference)? Read) BindSlowdown(MapReader c, string scenarioFile, RLMServing.Calibration.CalibrationFile? calibration, ScenarioInputs inputs)
    {
        const string key = "slowdown";
        var node = c.Raw(key);
        if (node is null) return (null, null, null);
        if (node is ConfigScalar)
        {
            double factor = c.PositiveDouble(key);
            if (factor > InputLimits.MaxSlowdown) throw c.Error(key, $"{factor:G4} is past the bound of {InputLimits.MaxSlowdown:N0} (docs/limits.md)", node);
            return (Slowdown.Constant(factor), null, null);
        }
        if (node is not ConfigMap m) throw c.Error(key, "expected a number (a constant factor) or a mapping { file: PATH, window_s: SECONDS, reference: file | calibration }", node);
        var r = new MapReader(m, c.File, c.KeyPath(key));
        var path = Path.GetFullPath(Path.Combine(Path.GetDirectoryName(Path.GetFullPath(scenarioFile)) ?? ".", r.RequiredString("file")));
        double window = r.NonNegativeDouble("window_s", 2.0);
        bool againstCalibration = r.Enum("reference", false, ("file", false), ("calibration", true));
        if (againstCalibration && calibration is null)
            throw r.Error("reference", "calibration needs cost_model.kind: calibrated (the visits are priced against its calibration)");
        r.Done();
        IReadOnlyList<(double TimeS, double Factor)> samples;
        try { samples = inputs.SlowdownSamples(path, againstCalibration ? calibration : null); }
        catch (UserInputException e) { throw r.Error("file", e.Message); }
        if (samples.FirstOrDefault(s => !(s.Factor <= InputLimits.MaxSlowdown) || !(s.TimeS <= InputLimits.MaxHorizonS)) is { Factor: var f, TimeS: var t } && (f > InputLimits.MaxSlowdown || t > InputLimits.MaxHorizonS || !double.IsFinite(f) || !double.IsFinite(t)))
            throw r.Error("file", $"{path}: slowdown {f:G4} at {t:G4} s is past the bounds (slowdown at most {InputLimits.MaxSlowdown:N0}, time at most {InputLimits.Seconds(InputLimits.MaxHorizonS)}; docs/limits.md)");
        return (Slowdown.FromSamples(samples, window), path, (window, againstCalibration ? "calibration" : "file"));
    }

    private static IterationCalls IterationCallsOf(MapReader c) =>
        c.Enum("iteration_calls", IterationCalls.One, ("one", IterationCalls.One), ("per_prefill_chunk", IterationCalls.PerPrefillChunk));

    private static SchedulerConfig BindScheduler(MapReader? s, EngineDefaults defaults)
    {
        if (s is null) return new SchedulerConfig(defaults.Batching, defaults.MaxNumSeqs, defaults.MaxNumBatchedTokens, QueueOrder.Fcfs, PreemptionMode.Recompute, 0, RouterKind.RoundRobin);
        var cfg = new SchedulerConfig(
            s.Enum("batching", defaults.Batching, BatchPlanners.All.Select(e => (e.Policy.Name, e.Policy)).ToArray()),
            s.PositiveInt("max_num_seqs", defaults.MaxNumSeqs),
            s.PositiveInt("max_num_batched_tokens", defaults.MaxNumBatchedTokens),
            s.Enum("queue", QueueOrder.Fcfs, ("fcfs", QueueOrder.Fcfs), ("sjf", QueueOrder.Sjf), ("priority", QueueOrder.Priority)),
            BindPreemption(s, defaults),
            s.NonNegativeDouble("batch_timeout_ms", 0),
            BindRouter(s, "router"))
        {
            LongPrefillTokenThreshold = s.Int("long_prefill_token_threshold") is { } t
                ? (t >= 0 ? t : throw s.Error("long_prefill_token_threshold", $"must be 0 (no cap) or positive, got {t}"))
                : 0,
        };
        cfg = cfg with { MaxPaddings = BindMaxPaddings(s, cfg.Batching) };
        CheckPartialPrefills(s);
        s.Done();
        return cfg;
    }

    /// <summary>
    /// vLLM 0.2.2-0.2.x's max_paddings (vllm/core/scheduler.py, PR #1381): its padded prefill batches are modelled by
    /// the vllm_v0 planner only, so the key needs that policy; absent, prompts are packed (later V0 and V1).
    /// </summary>
    private static int? BindMaxPaddings(MapReader s, BatchingPolicy batching)
    {
        if (s.Int("max_paddings") is not { } n) return null;
        if (n < 0) throw s.Error("max_paddings", $"must be 0 or positive (padding tokens allowed in one prefill step), got {n}");
        if (batching != BatchingPolicy.VllmV0)
            throw s.Error("max_paddings", $"early vLLM's padded prefill batches are modelled under scheduler.batching: vllm_v0 (engine: vllm-v0) only, not {batching.Name}");
        return n;
    }

    /// <summary>
    /// vLLM's max_num_partial_prefills: V1's scheduler has no such limit and the engine refuses any value but the
    /// default 1 (vllm/engine/arg_utils.py, <c>_is_v1_supported_oracle</c>, "No Concurrent Partial Prefills so far"),
    /// so the key is accepted to mirror a run's settings and only 1 is valid.
    /// </summary>
    private static void CheckPartialPrefills(MapReader s)
    {
        if (s.Int("max_num_partial_prefills") is { } n && n != 1)
            throw s.Error("max_num_partial_prefills", $"only 1 is modelled, got {n}: vLLM V1 does not run concurrent partial prefills (vllm/engine/arg_utils.py)");
    }

    /// <summary>vLLM V1 preempts by recompute only (no swap space; vllm/v1/core/sched/scheduler.py, issue #18115).</summary>
    private static PreemptionMode BindPreemption(MapReader s, EngineDefaults defaults)
    {
        var mode = s.Enum("preemption", PreemptionMode.Recompute, ("recompute", PreemptionMode.Recompute), ("swap", PreemptionMode.Swap));
        if (mode == PreemptionMode.Swap && defaults.Engine == EngineConfig.VllmV1)
            throw s.Error("preemption", "vLLM V1 preempts by recompute only; swap preemption needs engine: vllm-v0 or ort");
        return mode;
    }

    private static KvCacheConfig BindKvCache(MapReader? k, EngineDefaults defaults)
    {
        if (k is null) return new KvCacheConfig(16, 0.9, null) { Memory = MemoryPolicyConfig.Default with { PrefixCaching = defaults.PrefixCaching, Watermark = defaults.Watermark } };
        var cfg = new KvCacheConfig(k.PositiveInt("block_size", 16), k.Fraction("gpu_memory_utilization", 0.9, allowZero: false),
            k.Has("activation_reserve_gib") ? k.NonNegativeDouble("activation_reserve_gib", 0) : null)
        {
            Memory = BindMemoryPolicies(k, defaults),
        };
        k.Raw("compression");   // bound with the other serving policies (ScenarioLoader.Policies.cs)
        k.Done();
        return cfg;
    }

    /// <summary>
    /// slo: per-request limits (ttft_ms, tpot_ms, e2el_ms: what goodput counts) and limits on any percentile key of
    /// the run (p95_ttft_ms: 2000, p99.9_e2el_ms: ...), judged over the steady window (summary slo_met).
    /// </summary>
    private static SloConfig BindSlo(MapReader? s, ConfigMap? map)
    {
        if (s is null || map is null) return new SloConfig(null, null, null);
        var limits = new List<(string, double)>();
        foreach (var (key, _) in map.Entries)
            if (MetricPercentiles.TryParseKey(key, out _, out _)) limits.Add((key, s.PositiveDouble(key)));
        var cfg = new SloConfig(Opt(s, "ttft_ms"), Opt(s, "tpot_ms"), Opt(s, "e2el_ms")) { Limits = limits };
        s.Done();
        return cfg;
    }

    /// <summary>A percentile list: [50, 90, 95, 99.9] (or the comma-separated text "50,90,95"); null when absent.</summary>
    public static IReadOnlyList<double>? BindPercentiles(MapReader m, string key)
    {
        var node = m.Raw(key);
        if (node is null) return null;
        var source = $"{m.File}: {m.KeyPath(key)}{(node.Line > 0 ? $" (line {node.Line})" : "")}";
        if (node is ConfigScalar scalar) return MetricPercentiles.Parse(scalar.Value, source);
        if (node is not ConfigList list) throw m.Error(key, "expected a list of percentiles, e.g. [50, 90, 95, 99, 99.9]", node);
        var values = new List<double>();
        foreach (var item in list.Items)
        {
            if (item is not ConfigScalar s || !double.TryParse(s.Value, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var p))
                throw m.Error(key, $"expected numbers, got '{item.ToFlowText()}'", item);
            values.Add(p);
        }
        return MetricPercentiles.Normalize(values, source);
    }

    private static double? Opt(MapReader r, string key) => r.Has(key) ? r.PositiveDouble(key) : null;

    private static SyntheticWorkload BindWorkload(MapReader w, ModelArchitecture model)
    {
        int requests = Requests(w);
        var arrivalR = w.Map("arrival") ?? throw w.Error("arrival", "is required");
        var arrival = BindArrival(arrivalR);
        CheckHorizon(w, arrival, requests);
        var prompt = w.Map("prompt_tokens") is { } p ? BindDistribution(p) : throw w.Error("prompt_tokens", "is required");
        int maxOutput = w.PositiveInt("max_output_tokens", model.MaxContext);
        int samples = w.PositiveInt("n", 1);
        if (samples > 1 && arrival.IsClosed) throw w.Error("n", $"parallel sampling is not supported with {ArrivalName(arrival)} arrivals; use poisson, gamma or constant");
        int? maxThinking = w.Int("max_thinking_tokens");
        if (maxThinking < 0) throw w.Error("max_thinking_tokens", $"must not be negative, got {maxThinking}");
        var priority = w.Map("priority") is { } pr ? BindDistribution(pr, minDefault: 0) : null;
        ITokenDistribution? output = null, thinking = null, answer = null;
        double fraction = 0;
        if (w.Has("thinking_tokens") || w.Has("answer_tokens"))
        {
            if (w.Has("output_tokens")) throw w.Error("output_tokens", "give either output_tokens or thinking_tokens + answer_tokens, not both");
            thinking = w.Map("thinking_tokens") is { } t ? BindDistribution(t, minDefault: 0) : throw w.Error("thinking_tokens", "is required with answer_tokens");
            answer = w.Map("answer_tokens") is { } a ? BindDistribution(a) : throw w.Error("answer_tokens", "is required with thinking_tokens");
            if (w.Has("thinking_fraction")) throw w.Error("thinking_fraction", "has no effect with explicit thinking_tokens and answer_tokens");
        }
        else
        {
            output = w.Map("output_tokens") is { } o ? BindDistribution(o) : throw w.Error("output_tokens", "is required");
            // Reasoning models spend most of their output thinking; 0.9 is a default estimate, set it per workload.
            fraction = w.Fraction("thinking_fraction", model.Reasoning ? 0.9 : 0.0, allowZero: true);
        }
        w.Done();
        return new SyntheticWorkload(requests, arrival, prompt, output, fraction, thinking, answer, maxOutput, maxThinking, priority) { Samples = samples };
    }

    /// <summary><c>workload.requests</c>, at most <see cref="InputLimits.MaxRequests"/>.</summary>
    internal static int Requests(MapReader w)
    {
        int requests = w.PositiveInt("requests");
        if (requests > InputLimits.MaxRequests) throw w.Error("requests", $"{requests:N0} is past the bound of {InputLimits.MaxRequests:N0} requests per run (docs/limits.md)");
        return requests;
    }

    /// <summary>
    /// Refuses an open-loop arrival rate whose requests would span more than <see cref="InputLimits.MaxHorizonS"/> of
    /// simulated time (the expected span, requests over rate): a rate typed orders of magnitude too small.
    /// </summary>
    internal static void CheckHorizon(MapReader w, ArrivalProcess arrival, int requests)
    {
        double? rate = arrival switch { PoissonArrivals p => p.RatePerS, GammaArrivals g => g.RatePerS, ConstantArrivals c => c.RatePerS, _ => null };
        if (arrival is ClosedBatchArrivals b)
        {
            // The gaps alone; the batches' service time is what the run measures.
            double gapsS = (double)((requests - 1) / b.Batch) * b.GapMs / 1000;
            if (gapsS > InputLimits.MaxHorizonS)
                throw w.Error("arrival", $"gap_ms {b.GapMs:G4} between {(requests - 1) / b.Batch + 1:N0} batches spans {InputLimits.Seconds(gapsS)} of simulated time; at most {InputLimits.Seconds(InputLimits.MaxHorizonS)} (one year; docs/limits.md)");
        }
        if (rate is not { } r) return;
        double spanS = requests / r;
        if (spanS > InputLimits.MaxHorizonS)
            throw w.Error("arrival", $"rate {r:G4} req/s for {requests:N0} requests spans about {InputLimits.Seconds(spanS)} of simulated time; at most {InputLimits.Seconds(InputLimits.MaxHorizonS)} (one year; docs/limits.md)");
    }

    private static ArrivalProcess BindArrival(MapReader a)
    {
        var process = a.RequiredString("process");
        ArrivalProcess result = process switch
        {
            "poisson" => new PoissonArrivals(a.PositiveDouble("rate")),
            "gamma" => new GammaArrivals(a.PositiveDouble("rate"), a.PositiveDouble("burstiness", 1.0)),
            "constant" => new ConstantArrivals(a.PositiveDouble("rate")),
            "closed_loop" => new ClosedLoopArrivals(a.PositiveInt("concurrency"), a.NonNegativeDouble("think_time_ms", 0)),
            "closed_batches" => new ClosedBatchArrivals(a.PositiveInt("batch"), a.NonNegativeDouble("gap_ms", 0)),
            _ => throw a.Error("process", $"unknown arrival process '{process}'; expected poisson, gamma, constant, closed_loop or closed_batches"),
        };
        a.Done();
        return result;
    }

    private static string ArrivalName(ArrivalProcess arrival) => arrival is ClosedBatchArrivals ? "closed_batches" : "closed_loop";

    /// <summary>Binds <c>{ dist: ..., min, max }</c>; token counts are clamped to [min, max] (min defaults to 1).</summary>
    public static ITokenDistribution BindDistribution(MapReader d, int minDefault = 1)
    {
        var kind = d.RequiredString("dist");
        ITokenDistribution inner = kind switch
        {
            "constant" => new ConstantTokens(d.Int("value") is { } v and >= 0 ? v : throw d.Error("value", "must be a whole number >= 0")),
            "uniform" => Uniform(d),
            "normal" => new NormalTokens(d.PositiveDouble("mean"), d.NonNegativeDouble("std", 0)),
            "lognormal" => new LogNormalTokens(d.PositiveDouble("median"), d.NonNegativeDouble("sigma", 0)),
            "mixture" => Mixture(d),
            "empirical" => Empirical(d),
            _ => throw d.Error("dist", $"unknown distribution '{kind}'; expected constant, uniform, normal, lognormal, mixture or empirical"),
        };
        int min = d.Int("min") ?? minDefault;
        int max = d.Int("max") ?? int.MaxValue;
        if (min < 0) throw d.Error("min", $"must not be negative, got {min}");
        if (max < Math.Max(min, 1)) throw d.Error("max", $"must be at least {Math.Max(min, 1)}, got {max}");
        d.Done();
        return new Clamped(inner, min, max);
    }

    private static ITokenDistribution Uniform(MapReader d)
    {
        int min = d.Int("min") ?? throw d.Error("min", "is required for a uniform distribution");
        int max = d.Int("max") ?? throw d.Error("max", "is required for a uniform distribution");
        if (max < min) throw d.Error("max", $"must be at least min ({min})");
        return new UniformTokens(min, max);
    }

    private static ITokenDistribution Mixture(MapReader d)
    {
        var list = d.List("components") ?? throw d.Error("components", "is required for a mixture");
        var components = new List<(double, ITokenDistribution)>();
        for (int i = 0; i < list.Items.Count; i++)
        {
            if (list.Items[i] is not ConfigMap m) throw d.Error("components", $"item {i} must be a mapping", list.Items[i]);
            var c = new MapReader(m, d.File, $"{d.KeyPath("components")}[{i}]");
            double weight = c.PositiveDouble("weight");
            // The component's own keys are read by the nested binder; weight was consumed above.
            components.Add((weight, BindDistribution(c)));
        }
        if (components.Count == 0) throw d.Error("components", "needs at least one component");
        return new MixtureTokens(components);
    }

    private static ITokenDistribution Empirical(MapReader d)
    {
        var values = d.List("values") ?? throw d.Error("values", "is required for an empirical distribution");
        var ints = values.Items.Select((n, i) => n is ConfigScalar s && int.TryParse(s.Value, out var v) && v >= 0 ? v
            : throw d.Error("values", $"item {i} must be a whole number >= 0", n)).ToList();
        List<double>? weights = null;
        if (d.List("weights") is { } w)
        {
            weights = w.Items.Select((n, i) => n is ConfigScalar s && double.TryParse(s.Value, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var v) && v >= 0 ? v
                : throw d.Error("weights", $"item {i} must be a number >= 0", n)).ToList();
            if (weights.Count != ints.Count) throw d.Error("weights", $"has {weights.Count} items but values has {ints.Count}");
            if (weights.Sum() <= 0) throw d.Error("weights", "must not all be zero");
        }
        if (ints.Count == 0) throw d.Error("values", "needs at least one value");
        return new EmpiricalTokens(ints, weights);
    }

    private static Exception Innermost(Exception e) => e.InnerException is null ? e : Innermost(e.InnerException);

    /// <summary>
    /// Parses YAML, turning every parser failure into a user error with a line number; the file is checked first (a
    /// regular file of bounded size) and its events scanned for depth and alias expansion before any tree is built.
    /// </summary>
    public static YamlStream LoadYaml(string path)
    {
        var text = Files.InputFile.ReadAllText(path);
        YamlGuard.Check(text, path);
        var stream = new YamlStream();
        try { stream.Load(new StringReader(text)); }
        catch (YamlException e) { throw new UserInputException($"{path}: line {e.Start.Line}: malformed YAML: {Innermost(e).Message}"); }
        return stream;
    }
}
