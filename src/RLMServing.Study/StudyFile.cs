using RLMServing.IO.Scenarios;
using RLMServing.Catalog;
using YamlDotNet.RepresentationModel;

namespace RLMServing.Study;

/// <summary>A reasoning model and the standard model of the same size it is compared with (null: none).</summary>
public sealed record ModelPair(string Reasoning, string? Standard);

/// <summary>How requests are offered: the study's closed batches (a batch of N, wait for all, repeat) or open-loop Poisson rates.</summary>
public sealed record StudyLoad(int? ClosedBatch, IReadOnlyList<double> Rates)
{
    public string Describe() => ClosedBatch is { } b ? $"closed batches of {b}" : $"Poisson at {Rates[0]:G4} req/s";
}

public sealed record BimodalExperiment(IReadOnlyList<string> Datasets);

public sealed record BatchingExperiment(string Dataset, int Batch, IReadOnlyList<string> Policies);

/// <summary>Speculative decoding at several loads: closed batches of each size, or open-loop Poisson rates.</summary>
public sealed record SpeculativeExperiment(string Dataset, string Method, string? DraftModel, int NumSpeculativeTokens, IReadOnlyList<int>? Batches, IReadOnlyList<double> Rates)
{
    /// <summary>Each load: its variant suffix, its value (batch size or req/s) and how it reads.</summary>
    public IEnumerable<(string Suffix, double Value, string Text)> Loads() => Batches is { } b
        ? b.Select(n => ($"b{n}", (double)n, $"batch {n}"))
        : Rates.Select(r => ($"r{StudyPlan.Num(r)}", r, $"{StudyPlan.Num(r)} req/s"));
}

public sealed record KvCompressionExperiment(string Dataset, string Policy, IReadOnlyList<int> Budgets, double Rate, double KeptQuality);

public sealed record TokenBudgetExperiment(IReadOnlyList<string> Datasets);

/// <summary>The bound study file: what every experiment runs on, and the experiments (null: not in the file).</summary>
public sealed record StudyFile(
    string Path,
    string Name,
    int Seed,
    string Gpu,
    int TensorParallel,
    string CostModelFlow,
    IReadOnlyList<ModelPair> Models,
    IReadOnlyList<string> Datasets,
    IReadOnlyList<int> TokenBudgets,
    int Requests,
    StudyLoad Load,
    BimodalExperiment? Bimodal,
    BatchingExperiment? Batching,
    SpeculativeExperiment? Speculative,
    KvCompressionExperiment? KvCompression,
    TokenBudgetExperiment? TokenBudget)
{
    public ModelPair Primary => Models[0];
}

/// <summary>
/// Reads a study file with the scenario loader's strict reader: every key known (the nearest known key suggested),
/// every value checked, names checked against the catalog, each error one line naming the file, key and line.
/// </summary>
public static class StudyLoader
{
    /// <summary>The reasoning-workload presets the study uses (catalog/datasets).</summary>
    public static readonly string[] Presets = ["gsm8k", "math500", "aime24", "gpqa"];
    public static readonly string[] BatchingPolicies = ["static", "static_closed_batches", "continuous", "chunked_prefill"];
    public const int MaxTokenBudget = 131072;

    public static StudyFile Load(string path, HardwareCatalog catalog)
    {
        var stream = ScenarioLoader.LoadYaml(path);
        if (stream.Documents.Count == 0 || stream.Documents[0].RootNode is not YamlMappingNode rootYaml)
            throw new UserInputException($"{path}: expected a mapping of study keys at the top level");
        var root = new MapReader((ConfigMap)ConfigNode.FromYaml(rootYaml), path, "");

        string name = root.String("name") ?? System.IO.Path.GetFileNameWithoutExtension(path);
        RLMServing.IO.Results.OutputPath.CheckName(name, $"{path}: name");
        int seed = root.Int("seed") ?? 42;

        var hw = root.Map("hardware") ?? throw root.Error("hardware", "is required ({ gpu: NAME, tensor_parallel: N })");
        string gpu = hw.RequiredString("gpu");
        try { gpu = catalog.Gpu(gpu).Name; }
        catch (CatalogException e) { throw hw.Error("gpu", e.Message); }
        int tp = hw.PositiveInt("tensor_parallel", 1);
        hw.Done();

        string costFlow = root.Raw("cost_model") is { } cm ? cm.ToFlowText() : "{ kind: roofline }";

        var modelsList = root.List("models") ?? throw root.Error("models", "is required (a list of { reasoning: MODEL, standard: MODEL })");
        if (modelsList.Items.Count == 0) throw root.Error("models", "expected at least one { reasoning, standard } pair");
        var models = new List<ModelPair>();
        for (int i = 0; i < modelsList.Items.Count; i++)
        {
            if (modelsList.Items[i] is not ConfigMap mm) throw root.Error("models", $"models[{i}]: expected {{ reasoning: MODEL, standard: MODEL }}", modelsList.Items[i]);
            var m = new MapReader(mm, path, $"models[{i}]");
            string r = Model(m, "reasoning", catalog, reasoning: true)!;
            string? s = m.Has("standard") ? Model(m, "standard", catalog, reasoning: false) : null;
            m.Done();
            models.Add(new ModelPair(r, s));
        }

        var datasets = Datasets(root, "datasets", null) ?? throw root.Error("datasets", $"is required (a list of {string.Join(", ", Presets)})");
        var budgets = IntList(root, "token_budgets") ?? throw root.Error("token_budgets", "is required (max_tokens budgets, e.g. [256, 1024, 4096, 20480])");
        foreach (var b in budgets)
            if (b > MaxTokenBudget) throw root.Error("token_budgets", $"{b} is more than {MaxTokenBudget} tokens");
        if (budgets.Distinct().Count() != budgets.Count || !budgets.SequenceEqual(budgets.Order()))
            throw root.Error("token_budgets", "expected increasing budgets without repeats");
        int requests = root.PositiveInt("requests");
        if (requests > RLMServing.InputLimits.MaxRequests) throw root.Error("requests", $"at most {RLMServing.InputLimits.MaxRequests:N0}");

        var loadR = root.Map("load") ?? throw root.Error("load", "is required ({ closed_batches: N } or { rates: [R, ...] })");
        int? batch = loadR.Has("closed_batches") ? loadR.PositiveInt("closed_batches") : null;
        var rates = DoubleList(loadR, "rates") ?? [];
        if (batch is null && rates.Count == 0) throw loadR.Error("closed_batches", "give closed_batches: N (the study's load) or rates: [R, ...]");
        if (batch is not null && rates.Count > 0) throw loadR.Error("rates", "give closed_batches or rates, not both");
        loadR.Done();
        var load = new StudyLoad(batch, rates);

        var ex = root.Map("experiments") ?? throw root.Error("experiments", "is required (bimodal_latency, batching, speculative_decoding, kv_compression, token_budget)");
        BimodalExperiment? bimodal = null;
        if (ex.Map("bimodal_latency") is { } bm)
        {
            bimodal = new BimodalExperiment(Datasets(bm, "datasets", datasets)!);
            bm.Done();
        }
        BatchingExperiment? batching = null;
        if (ex.Map("batching") is { } ba)
        {
            string ds = Dataset(ba, "dataset", datasets[0]);
            int size = ba.PositiveInt("batch", batch ?? 64);
            var policies = StringList(ba, "policies") ?? [.. BatchingPolicies];
            foreach (var p in policies)
                if (!BatchingPolicies.Contains(p)) throw ba.Error("policies", $"unknown policy '{p}'; expected one of {string.Join(", ", BatchingPolicies)}{Suggest(p, BatchingPolicies)}");
            if (!policies.Contains("continuous")) throw ba.Error("policies", "must include continuous (the other policies are compared with it)");
            ba.Done();
            batching = new BatchingExperiment(ds, size, policies);
        }
        SpeculativeExperiment? spec = null;
        if (ex.Map("speculative_decoding") is { } sp)
        {
            string ds = Dataset(sp, "dataset", datasets[0]);
            string method = sp.String("method") ?? "draft";
            string[] methods = ["draft", "eagle", "ngram"];
            if (!methods.Contains(method)) throw sp.Error("method", $"unknown method '{method}'; expected one of {string.Join(", ", methods)}{Suggest(method, methods)}");
            string? draft = method == "draft" ? Model(sp, "draft_model", catalog, reasoning: null) ?? throw sp.Error("draft_model", "is required for method draft") : null;
            int k = sp.PositiveInt("num_speculative_tokens", 2);
            var specBatches = IntList(sp, "batches");
            var specRates = DoubleList(sp, "rates");
            if (specBatches is not null && specRates is not null) throw sp.Error("rates", "give batches (closed batches of each size) or rates (Poisson), not both");
            int loads = specBatches?.Count ?? specRates?.Count ?? throw sp.Error("batches", "is required: the loads to compare, closed-batch sizes (e.g. [1, 8, 64, 256]) or rates: [req/s, ...]");
            if (loads < 2) throw sp.Error(specBatches is null ? "rates" : "batches", "give at least two loads (the finding is about how the gain moves with load)");
            sp.Done();
            spec = new SpeculativeExperiment(ds, method, draft, k, specBatches, specRates ?? []);
        }
        KvCompressionExperiment? kv = null;
        if (ex.Map("kv_compression") is { } kc)
        {
            string ds = Dataset(kc, "dataset", datasets[0]);
            string policy = kc.String("policy") ?? "rkv";
            string[] policies = ["rkv", "budget", "streaming", "ratio"];
            if (!policies.Contains(policy)) throw kc.Error("policy", $"unknown policy '{policy}'; expected one of {string.Join(", ", policies)}{Suggest(policy, policies)}");
            var kvBudgets = IntList(kc, "budgets") ?? throw kc.Error("budgets", "is required (KV budgets in tokens, e.g. [2048, 4096, 6144])");
            double rate = kc.PositiveDouble("rate", 0.1);
            double kept = kc.Fraction("kept_quality", 0.95, allowZero: false);
            kc.Done();
            kv = new KvCompressionExperiment(ds, policy, kvBudgets, rate, kept);
        }
        TokenBudgetExperiment? tb = null;
        if (ex.Map("token_budget") is { } t)
        {
            tb = new TokenBudgetExperiment(Datasets(t, "datasets", datasets)!);
            t.Done();
        }
        ex.Done();
        root.Done();
        return new StudyFile(path, name, seed, gpu, tp, costFlow, models, datasets, budgets, requests, load, bimodal, batching, spec, kv, tb);
    }

    private static string? Model(MapReader m, string key, HardwareCatalog catalog, bool? reasoning)
    {
        var name = m.String(key);
        if (name is null) return reasoning == true ? throw m.Error(key, "is required") : null;
        if (!catalog.TryModel(name, out var model)) throw m.Error(key, $"unknown model '{name}'{Suggest(name, catalog.Models.Select(x => x.Name))}");
        if (reasoning == true && !model.Reasoning) throw m.Error(key, $"'{name}' is not a reasoning model in the catalog (reasoning: false)");
        if (reasoning == false && model.Reasoning) throw m.Error(key, $"'{name}' is a reasoning model in the catalog; the standard side needs reasoning: false");
        return model.Name;
    }

    private static string Dataset(MapReader m, string key, string fallback)
    {
        var d = m.String(key) ?? fallback;
        if (!Presets.Contains(d)) throw m.Error(key, $"unknown dataset '{d}'; expected one of {string.Join(", ", Presets)}{Suggest(d, Presets)}");
        return d;
    }

    private static List<string>? Datasets(MapReader m, string key, IReadOnlyList<string>? fallback)
    {
        var list = StringList(m, key);
        if (list is null) return fallback?.ToList();
        if (list.Count == 0) throw m.Error(key, "expected at least one dataset");
        foreach (var d in list)
            if (!Presets.Contains(d)) throw m.Error(key, $"unknown dataset '{d}'; expected one of {string.Join(", ", Presets)}{Suggest(d, Presets)}");
        if (list.Distinct().Count() != list.Count) throw m.Error(key, "lists a dataset twice");
        return list;
    }

    private static List<string>? StringList(MapReader m, string key)
    {
        var list = m.List(key);
        if (list is null) return null;
        return list.Items.Select(i => i is ConfigScalar s ? s.Value : throw m.Error(key, "expected a list of names", i)).ToList();
    }

    private static List<int>? IntList(MapReader m, string key)
    {
        var list = m.List(key);
        if (list is null) return null;
        if (list.Items.Count == 0) throw m.Error(key, "expected at least one value");
        return list.Items.Select(i => i is ConfigScalar s && int.TryParse(s.Value.Replace("_", ""), System.Globalization.NumberStyles.Integer, System.Globalization.CultureInfo.InvariantCulture, out var v) && v > 0
            ? v : throw m.Error(key, $"expected whole numbers greater than 0, got '{(i as ConfigScalar)?.Value ?? i.ToFlowText()}'", i)).ToList();
    }

    private static List<double>? DoubleList(MapReader m, string key)
    {
        var list = m.List(key);
        if (list is null) return null;
        if (list.Items.Count == 0) throw m.Error(key, "expected at least one value");
        return list.Items.Select(i => i is ConfigScalar s && double.TryParse(s.Value, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var v) && v > 0 && double.IsFinite(v)
            ? v : throw m.Error(key, $"expected numbers greater than 0, got '{(i as ConfigScalar)?.Value ?? i.ToFlowText()}'", i)).ToList();
    }

    private static string Suggest(string name, IEnumerable<string> known)
    {
        var near = NameDistance.Nearest(name, known, 1);
        return near.Count > 0 ? $"; did you mean '{near[0]}'?" : "";
    }
}
