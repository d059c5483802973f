using RLMServing.Catalog;
using RLMServing.IO.Catalog;
using RLMServing.Memory;
using RLMServing.Policies;

namespace RLMServing.IO.Scenarios;

/// <summary>
/// The serving policies: <c>kv_cache.compression</c>, <c>speculative</c> and <c>thinking_budget</c> (docs/policies.md).
/// Quality figures come from the cited files in catalog/quality unless the scenario overrides them.
/// </summary>
public static partial class ScenarioLoader
{
    private static PolicyConfig BindPolicies(ConfigMap tree, MapReader root, string file, ModelArchitecture model, ScenarioInputs inputs)
    {
        var specR = root.Map("speculative");
        var budgetR = root.Map("thinking_budget");
        var compressionR = (tree.Get("kv_cache") as ConfigMap)?.Get("compression") is ConfigMap cm
            ? new MapReader(cm, file, "kv_cache.compression")
            : (tree.Get("kv_cache") as ConfigMap)?.Get("compression") is ConfigScalar { IsNull: false } cs
                ? throw new UserInputException($"{file}: kv_cache.compression: expected a mapping such as {{ policy: rkv, budget_tokens: 2048 }} (line {cs.Line})")
                : null;
        if (specR is null && budgetR is null && compressionR is null) return PolicyConfig.None;
        // The workload's dataset preset, when there is one, picks the quality curves unless a policy names its own.
        string? workloadDataset = ((tree.Get("workload") as ConfigMap)?.Get("dataset") as ConfigScalar)?.Value;
        var quality = inputs.Quality;
        var catalog = inputs.Catalog;
        var compression = compressionR is null ? CompressionConfig.Off : BindCompression(compressionR, model, quality, workloadDataset);
        var speculative = specR is null ? null : BindSpeculative(specR, model, catalog, quality, workloadDataset);
        var thinking = budgetR is null ? null : BindThinkingBudget(budgetR, model, quality, workloadDataset);
        return new PolicyConfig(compression, speculative, thinking);
    }

    /// <summary>Streaming evicts at block granularity: it checks every block_size steps.</summary>
    private static PolicyConfig? WithBlockSize(PolicyConfig policies, global::RLMServing.Scenarios.KvCacheConfig kv) =>
        ReferenceEquals(policies, PolicyConfig.None) ? null
        : policies.Compression.Policy == CompressionPolicy.Streaming ? policies with { Compression = policies.Compression with { IntervalSteps = kv.BlockSize } }
        : policies;

    private static CompressionConfig BindCompression(MapReader c, ModelArchitecture model, QualityCatalog quality, string? workloadDataset)
    {
        var policy = c.Enum("policy", CompressionPolicy.None, ("none", CompressionPolicy.None), ("streaming", CompressionPolicy.Streaming),
            ("budget", CompressionPolicy.Budget), ("ratio", CompressionPolicy.Ratio), ("rkv", CompressionPolicy.Rkv));
        if (!c.Has("policy")) throw c.Error("policy", "is required: none, streaming, budget, ratio or rkv");
        string name = c.String("policy")!.ToLowerInvariant();
        void NotFor(string key, string why) { if (c.Has(key)) throw c.Error(key, $"has no effect with policy {name} ({why})"); }
        if (policy == CompressionPolicy.None)
        {
            foreach (var key in new[] { "budget_tokens", "window_tokens", "ratio", "interval", "observation_window", "dataset", "accuracy_retention" })
                NotFor(key, "nothing is compressed");
            c.Done();
            return CompressionConfig.Off;
        }
        int budget = 0, interval, window = 0;
        double ratio = 1;
        switch (policy)
        {
            case CompressionPolicy.Streaming:
                NotFor("budget_tokens", "streaming keeps window_tokens of recent output");
                NotFor("ratio", "ratio belongs to policy ratio");
                NotFor("interval", "streaming evicts a whole block as soon as one is outside the window");
                NotFor("observation_window", "streaming scores nothing");
                budget = c.PositiveInt("window_tokens");
                interval = 0;   // set from the block size by the caller of the engine: see below
                break;
            case CompressionPolicy.Ratio:
                NotFor("budget_tokens", "ratio keeps a fraction of the thinking tokens");
                NotFor("window_tokens", "window_tokens belongs to policy streaming");
                ratio = c.Fraction("ratio", 0, allowZero: false);
                if (!c.Has("ratio")) throw c.Error("ratio", "is required with policy ratio");
                interval = c.PositiveInt("interval", 128);
                window = c.PositiveInt("observation_window", 32);
                break;
            default:
                NotFor("ratio", "ratio belongs to policy ratio");
                NotFor("window_tokens", "window_tokens belongs to policy streaming");
                budget = c.PositiveInt("budget_tokens");
                interval = c.PositiveInt("interval", 128);
                window = c.PositiveInt("observation_window", 32);
                break;
        }
        QualityEstimate? retention;
        if (c.Has("accuracy_retention"))
        {
            NotFor("dataset", "accuracy_retention is given");
            double v = c.PositiveDouble("accuracy_retention");
            if (v > 1.5) throw c.Error("accuracy_retention", $"is a fraction of the uncompressed accuracy (1 = no loss), got {v}");
            retention = QualityEstimate.Constant(v, "kv_cache.compression.accuracy_retention (set in the scenario)");
        }
        else
        {
            string? dataset = c.String("dataset") ?? workloadDataset;
            retention = dataset is null ? null : quality.Curve("kv_compression", name, dataset, model.Name);
            if (retention is null && c.Has("dataset"))
                throw c.Error("dataset", $"no cited retention curve for policy {name} on '{dataset}'; cited: {string.Join(", ", quality.Datasets("kv_compression", name).DefaultIfEmpty("none"))}; or set accuracy_retention");
        }
        c.Done();
        return new CompressionConfig(policy, budget, ratio, interval, window, retention);
    }

    private static SpeculativeConfig BindSpeculative(MapReader s, ModelArchitecture model, HardwareCatalog catalog, QualityCatalog quality, string? workloadDataset)
    {
        var method = s.Enum("method", SpeculativeMethod.Ngram, ("draft", SpeculativeMethod.Draft), ("ngram", SpeculativeMethod.Ngram), ("eagle", SpeculativeMethod.Eagle));
        if (!s.Has("method")) throw s.Error("method", "is required: draft, ngram or eagle");
        string methodName = s.String("method")!.ToLowerInvariant();
        string? draft = null;
        ModelArchitecture? draftModel = null;
        if (method == SpeculativeMethod.Draft)
        {
            var name = s.RequiredString("draft_model");
            try { draftModel = catalog.Model(name); }
            catch (CatalogException e) { throw s.Error("draft_model", e.Message); }
            draft = draftModel.Name;
        }
        else if (s.Has("draft_model")) throw s.Error("draft_model", $"has no effect with method {methodName} (only method draft runs a draft model)");
        int k = s.PositiveInt("num_speculative_tokens", 4);
        if (k > 16) throw s.Error("num_speculative_tokens", $"must be at most 16, got {k}");
        // An EAGLE head is one decoder layer plus the target's LM head: that share of the target's weights per step.
        double eagleDefault = (model.ParamsPerLayer + (double)model.Vocab * model.Hidden) / (model.Layers * (double)model.ParamsPerLayer + (double)model.Vocab * model.Hidden);
        double fraction = method == SpeculativeMethod.Eagle ? s.Fraction("draft_cost_fraction", eagleDefault, allowZero: true) : 0;
        if (method != SpeculativeMethod.Eagle && s.Has("draft_cost_fraction"))
            throw s.Error("draft_cost_fraction", $"has no effect with method {methodName} (draft models are priced by the cost model; an n-gram lookup costs draft_step_overhead_ms)");
        double rate;
        string source;
        if (s.Has("acceptance_rate"))
        {
            if (s.Has("dataset")) throw s.Error("dataset", "has no effect when acceptance_rate is given");
            rate = s.Fraction("acceptance_rate", 0, allowZero: false);
            if (rate >= 1) throw s.Error("acceptance_rate", "must be below 1 (every draft token accepted is not a model of anything)");
            source = "speculative.acceptance_rate (set in the scenario)";
        }
        else
        {
            string dataset = s.String("dataset") ?? workloadDataset
                ?? throw s.Error("acceptance_rate", "is required (or name a dataset with a cited rate in catalog/quality/speculative.yaml)");
            var cited = quality.Rate(methodName, dataset, model.Name)
                ?? throw s.Error(s.Has("dataset") ? "dataset" : "acceptance_rate", $"no cited acceptance rate for method {methodName} on '{dataset}'; cited: {string.Join(", ", quality.Rates.Where(r => r.Method == methodName).Select(r => r.Dataset).DefaultIfEmpty("none"))}; or set acceptance_rate");
            rate = cited.Rate;
            source = QualityCatalog.RateSource(cited, model.Name);
        }
        // Draft memory (weights + its KV, from the catalog or the EAGLE head's shape) unless given per GPU.
        double? memoryGib = null;
        if (s.Has("draft_memory_gib"))
        {
            if (method == SpeculativeMethod.Ngram) throw s.Error("draft_memory_gib", "has no effect with method ngram (an n-gram lookup keeps nothing on the GPU)");
            memoryGib = s.NonNegativeDouble("draft_memory_gib", 0);
        }
        double? overheadMs = s.Has("draft_step_overhead_ms") ? s.NonNegativeDouble("draft_step_overhead_ms", 0) : null;
        s.Done();
        return new SpeculativeConfig(method, draft, k, rate, fraction, source)
        {
            Memory = DraftMemory.For(method, model, draftModel, memoryGib),
            DraftStepOverheadMs = overheadMs,
        };
    }

    private static ThinkingBudgetConfig BindThinkingBudget(MapReader t, ModelArchitecture model, QualityCatalog quality, string? workloadDataset)
    {
        var policy = t.Enum("policy", ThinkingBudgetPolicy.None, ("none", ThinkingBudgetPolicy.None), ("static", ThinkingBudgetPolicy.Static), ("adaptive", ThinkingBudgetPolicy.Adaptive));
        if (!t.Has("policy")) throw t.Error("policy", "is required: none, static or adaptive");
        int? max = null;
        if (policy == ThinkingBudgetPolicy.None)
        {
            if (t.Has("max_thinking_tokens")) throw t.Error("max_thinking_tokens", "has no effect with policy none");
        }
        else max = t.PositiveInt("max_thinking_tokens");
        int min = 0;
        double scale = 1, hysteresis = 0.1;
        double? kvThreshold = null;
        if (policy == ThinkingBudgetPolicy.Adaptive)
        {
            min = t.Int("min_thinking_tokens") ?? 256;
            if (min < 0) throw t.Error("min_thinking_tokens", $"must not be negative, got {min}");
            scale = t.PositiveDouble("queue_scale", 16);
            if (t.Has("kv_threshold"))
            {
                kvThreshold = t.Fraction("kv_threshold", 0, allowZero: true);
                if (kvThreshold >= 1) throw t.Error("kv_threshold", $"must be below 1 (the KV usage above which budgets shrink), got {kvThreshold}");
            }
            hysteresis = t.Fraction("hysteresis", 0.1, allowZero: true);
            if (hysteresis >= 1) throw t.Error("hysteresis", $"must be below 1 (a fraction of the budget in force), got {hysteresis}");
        }
        else
        {
            foreach (var key in new[] { "min_thinking_tokens", "queue_scale", "kv_threshold", "hysteresis" })
                if (t.Has(key)) throw t.Error(key, "applies to policy adaptive only");
        }
        QualityEstimate? accuracy;
        if (t.List("accuracy_curve") is { } list)
        {
            if (t.Has("dataset")) throw t.Error("dataset", "has no effect when accuracy_curve is given");
            var points = new List<(double, double)>();
            for (int i = 0; i < list.Items.Count; i++)
            {
                if (list.Items[i] is not ConfigList { Items.Count: 2 } pair
                    || pair.Items[0] is not ConfigScalar xs || pair.Items[1] is not ConfigScalar ys
                    || !double.TryParse(xs.Value, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var x)
                    || !double.TryParse(ys.Value, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var y)
                    || y < 0 || y > 1)
                    throw t.Error("accuracy_curve", $"item {i} must be [thinking_tokens, accuracy] with accuracy in [0, 1]", list.Items[i]);
                if (points.Count > 0 && x <= points[^1].Item1) throw t.Error("accuracy_curve", $"item {i}: thinking_tokens must increase along the curve", list.Items[i]);
                points.Add((x, y));
            }
            if (points.Count == 0) throw t.Error("accuracy_curve", "needs at least one [thinking_tokens, accuracy] point");
            accuracy = new QualityEstimate(points, null, "thinking_budget.accuracy_curve (set in the scenario)");
        }
        else
        {
            string? dataset = t.String("dataset") ?? workloadDataset;
            accuracy = dataset is null ? null : quality.Curve("thinking_budget", "budget_forcing", dataset, model.Name);
            if (accuracy is null && t.Has("dataset"))
                throw t.Error("dataset", $"no cited accuracy curve for '{dataset}'; cited: {string.Join(", ", quality.Datasets("thinking_budget", "budget_forcing").DefaultIfEmpty("none"))}; or give accuracy_curve");
        }
        t.Done();
        return new ThinkingBudgetConfig(policy, max, min, scale, accuracy) { KvThreshold = kvThreshold, Hysteresis = hysteresis };
    }
}
