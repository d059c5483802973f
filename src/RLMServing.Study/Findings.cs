using System.Globalization;
using System.Text.Json.Serialization;
using MathNet.Numerics.Statistics;

namespace RLMServing.Study;

/// <summary>One finding of findings.json: the paper's claim, our number with its definition, the verdict and the command.</summary>
public sealed record Finding(
    [property: JsonPropertyName("id")] string Id,
    [property: JsonPropertyName("claim")] string Claim,
    [property: JsonPropertyName("ours")] string Ours,
    [property: JsonPropertyName("verdict")] string Verdict,
    [property: JsonPropertyName("command")] string Command,
    [property: JsonPropertyName("values")] SortedDictionary<string, double?> Values);

public static class Verdict
{
    public const string Reproduced = "reproduced";
    public const string Differs = "differs";
    public const string NotMeasured = "not measured";

    /// <summary>
    /// A claimed range holds when ours lies in it widened by <paramref name="slack"/> on each side (a range read off
    /// a paper's runs carries their noise too; the slack is stated in docs/study.md, not tuned to our numbers).
    /// </summary>
    public static string InRange(double value, double low, double high, double slack) =>
        value >= low - slack && value <= high + slack ? Reproduced : Differs;

    /// <summary>Latency is bimodal for the reasoning model when the test says so on more than half of the datasets.</summary>
    public static string Bimodal(IReadOnlyList<bool> reasoningBimodal) =>
        reasoningBimodal.Count == 0 ? NotMeasured : reasoningBimodal.Count(b => b) * 2 > reasoningBimodal.Count ? Reproduced : Differs;

    /// <summary>
    /// "Little in general but 15-20% in specific regimes": the best load's gain in 15-20% (± 5 points) and the gain
    /// "in general" under 10%. In general is the study's own operating point (<paramref name="general"/>: the
    /// speed-up at the load every other experiment runs at) when the loads include it, else the median load.
    /// </summary>
    public static string Speculative(IReadOnlyList<double> speedups, double? general = null)
    {
        if (speedups.Count == 0) return NotMeasured;
        double best = speedups.Max() - 1, typical = (general ?? speedups.Median()) - 1;
        return InRange(best, 0.15, 0.20, 0.05) == Reproduced && typical < 0.10 ? Reproduced : Differs;
    }

    /// <summary>
    /// "About 40% less memory at kept quality": the largest memory cut among budgets that keep quality (estimated
    /// retention at least <paramref name="kept"/>) within 40% ± 10 points. Null cut: no budget kept quality.
    /// </summary>
    public static string KvCompression(double? bestKeptCut) => bestKeptCut is { } c ? InRange(c, 0.40, 0.40, 0.10) : Differs;

    /// <summary>
    /// The budget trade-off holds when the reasoning model's latency grows with the budget (never falling by more
    /// than 5% from one budget to the next, and at least 1.5x from the smallest to the largest), its accuracy (when
    /// measured) never falls by more than 0.01 and ends higher than it starts, and the standard model's latency
    /// grows less than the reasoning model's.
    /// </summary>
    public static string TokenBudget(IReadOnlyList<double> reasoningLatency, IReadOnlyList<double>? reasoningAccuracy, IReadOnlyList<double>? standardLatency)
    {
        if (reasoningLatency.Count < 2) return NotMeasured;
        bool latencyGrows = Steps(reasoningLatency).All(s => s.B >= s.A * 0.95) && reasoningLatency[^1] >= 1.5 * reasoningLatency[0];
        bool accuracyGrows = reasoningAccuracy is null || (Steps(reasoningAccuracy).All(s => s.B >= s.A - 0.01) && reasoningAccuracy[^1] > reasoningAccuracy[0]);
        bool standardFlatter = standardLatency is null || standardLatency[^1] / standardLatency[0] < reasoningLatency[^1] / reasoningLatency[0];
        return latencyGrows && accuracyGrows && standardFlatter ? Reproduced : Differs;
    }

    private static IEnumerable<(double A, double B)> Steps(IReadOnlyList<double> v) => v.Zip(v.Skip(1));
}

/// <summary>Chart data of the bimodality panel: each run's latencies and its test.</summary>
public sealed record BimodalPanel(IReadOnlyList<(string Variant, double[] E2eMs, BimodalityResult Test)> Runs);

/// <summary>Utilisation per batching policy, in the three readings (null: not measured).</summary>
public sealed record UtilisationPanel(IReadOnlyList<(string Policy, double? Occupancy, double? Busy, double? Bandwidth, double? Compute)> Rows);

public sealed record SpeculativePanel(string LoadAxis, IReadOnlyList<(double Load, double Speedup)> Points);

public sealed record KvPanel(IReadOnlyList<(int Budget, double MemoryCut, double? Retention)> Points);

public sealed record TokenBudgetPanel(IReadOnlyList<(string Series, IReadOnlyList<(int Budget, double MeanE2eMs, double? Accuracy)> Points)> Series);

/// <summary>The findings and the data of their charts.</summary>
public sealed record StudyAnalysis(
    IReadOnlyList<Finding> Findings,
    BimodalPanel? Bimodal,
    UtilisationPanel? Utilisation,
    SpeculativePanel? Speculative,
    KvPanel? Kv,
    TokenBudgetPanel? TokenBudget);

/// <summary>
/// Reads the study's runs (simulated or live, the same way) into its findings. Every number is defined where it is
/// computed, and the definition goes into the finding's <c>ours</c>.
/// </summary>
public static class FindingsBuilder
{
    public const string BimodalId = "bimodal_latency";
    public const string BatchingId = "continuous_batching_utilization";
    public const string SpeculativeId = "speculative_decoding_regimes";
    public const string KvId = "kv_compression_memory";
    public const string TokenBudgetId = "token_budget_tradeoff";

    public static readonly string[] Ids = [BimodalId, BatchingId, SpeculativeId, KvId, TokenBudgetId];

    private const string BimodalClaim = "Reasoning models' latency is bimodal (quick answers and long chains of thought), which breaks mean-based SLOs.";
    private const string BatchingClaim = "Continuous batching raises GPU utilisation by 30-45% over static batching, which suffers head-of-line blocking.";
    private const string SpeculativeClaim = "Speculative decoding helps little in general, but 15-20% in specific regimes.";
    private const string KvClaim = "Dynamic KV-cache compression cuts memory by about 40% at kept quality.";
    private const string TokenBudgetClaim = "Token budget (256 ... 20,480) trades latency against accuracy, for reasoning models against standard ones of the same size.";

    public static StudyAnalysis Build(StudyFile s, StudyResults r)
    {
        var findings = new List<Finding>();
        var (f1, bimodal) = Bimodal(s, r);
        var (f2, util) = Batching(s, r);
        var (f3, spec) = Speculative(s, r);
        var (f4, kv) = Kv(s, r);
        var (f5, tb) = TokenBudget(s, r);
        findings.AddRange([f1, f2, f3, f4, f5]);
        return new StudyAnalysis(findings, bimodal, util, spec, kv, tb);
    }

    private static Finding NotMeasured(string id, string claim, string reason, StudyResults r, string experiment) =>
        new(id, claim, $"not measured: {reason}", Verdict.NotMeasured, r.Commands.GetValueOrDefault(experiment, ""), new());

    private static string? Missing(StudyFile s, StudyResults r, string experiment, object? section) =>
        r.NotMeasured.TryGetValue(experiment, out var why) ? why
        : section is null ? $"the study file {Path.GetFileName(s.Path)} has no experiments.{experiment.Replace('-', '_')} section"
        : !r.Of(experiment).Any() ? "no run of this experiment completed" : null;

    private static (Finding, BimodalPanel?) Bimodal(StudyFile s, StudyResults r)
    {
        if (Missing(s, r, Experiments.Bimodal, s.Bimodal) is { } why) return (NotMeasured(BimodalId, BimodalClaim, why, r, Experiments.Bimodal), null);
        var runs = new List<(string, double[], BimodalityResult)>();
        var values = new SortedDictionary<string, double?>();
        var reasoning = new List<bool>();
        var parts = new List<string>();
        int index = 0;
        foreach (var o in r.Of(Experiments.Bimodal))
        {
            if (o.E2eMs.Length < 10) continue;
            var t = Bimodality.Test(o.E2eMs);
            double support = Bimodality.Support(o.E2eMs, unchecked(s.Seed * 7919 + index++ * Bimodality.Resamples));
            bool bimodal = t.Bimodal && support >= Bimodality.Confidence;
            runs.Add((o.Variant, o.E2eMs, t));
            values[$"{o.Variant}.delta_bic"] = Math.Round(t.DeltaBic, 2);
            values[$"{o.Variant}.modes"] = t.ModesMs.Count;
            values[$"{o.Variant}.bimodal_support"] = Math.Round(support, 3);
            if (IsReasoning(o.Variant)) reasoning.Add(bimodal);
            parts.Add($"{o.Variant}: {(bimodal ? "bimodal" : "not bimodal")} (ΔBIC {t.DeltaBic:F1}, {t.ModesMs.Count} mode{(t.ModesMs.Count == 1 ? "" : "s")}{(t.ModesMs.Count >= 2 ? $" at {string.Join(" and ", t.ModesMs.Take(2).Select(Seconds))}" : "")}, support {support:F2}, n = {t.N})");
        }
        values["reasoning_bimodal_share"] = reasoning.Count == 0 ? null : (double)reasoning.Count(b => b) / reasoning.Count;
        string ours = $"Test: two-component Gaussian mixture on log end-to-end latency against one Gaussian, by BIC (EM fit); bimodal when ΔBIC > {Bimodality.StrongEvidence:F0}, " +
                      $"the fitted mixture has two modes, and both hold on {Bimodality.Confidence:P0} of {Bimodality.Resamples} random halves of the sample. " +
                      $"Reasoning model bimodal on {reasoning.Count(b => b)} of {reasoning.Count} datasets. " + string.Join("; ", parts) + ".";
        return (new Finding(BimodalId, BimodalClaim, ours, Verdict.Bimodal(reasoning), r.Commands.GetValueOrDefault(Experiments.Bimodal, ""), values), new BimodalPanel(runs));
    }

    internal static bool IsReasoning(string variant) => variant.StartsWith("reasoning", StringComparison.Ordinal) || variant.Contains("-reasoning", StringComparison.Ordinal);

    private static (Finding, UtilisationPanel?) Batching(StudyFile s, StudyResults r)
    {
        if (Missing(s, r, Experiments.Batching, s.Batching) is { } why) return (NotMeasured(BatchingId, BatchingClaim, why, r, Experiments.Batching), null);
        int batch = s.Batching!.Batch;
        var rows = new List<(string, double?, double?, double?, double?)>();
        foreach (var p in s.Batching.Policies)
        {
            var o = r.Get(Experiments.Batching, p);
            if (o is null) { rows.Add((p, null, null, null, null)); continue; }
            bool sim = r.Source == "simulated";
            rows.Add((p, o.MeanRunning / batch, sim ? o.Summary.GpuBusyFraction : null, sim ? o.Summary.EstBandwidthUtilization : null, sim ? o.Summary.EstComputeUtilization : null));
        }
        var cont = rows.First(x => x.Item1 == "continuous");
        var values = new SortedDictionary<string, double?>();
        foreach (var (p, occ, busy, bw, comp) in rows)
        {
            values[$"{p}.batch_occupancy"] = Round(occ);
            values[$"{p}.gpu_busy_fraction"] = Round(busy);
            values[$"{p}.est_bandwidth_utilization"] = Round(bw);
            values[$"{p}.est_compute_utilization"] = Round(comp);
        }
        static double? Gain(double? a, double? b) => a is { } x && b is { } y && y > 0 ? x / y - 1 : null;
        var parts = new List<string>();
        string? verdictBasis = null;
        double? headline = null;
        foreach (var basis in new[] { "static_closed_batches", "static" })
        {
            var st = rows.FirstOrDefault(x => x.Item1 == basis);
            if (st.Item1 is null) continue;
            double? g1 = Gain(cont.Item2, st.Item2), g2 = Gain(cont.Item3, st.Item3), g3 = Gain(cont.Item4, st.Item4), g4 = Gain(cont.Item5, st.Item5);
            values[$"gain_vs_{basis}.batch_occupancy"] = Round(g1);
            values[$"gain_vs_{basis}.gpu_busy_fraction"] = Round(g2);
            values[$"gain_vs_{basis}.est_bandwidth_utilization"] = Round(g3);
            values[$"gain_vs_{basis}.est_compute_utilization"] = Round(g4);
            parts.Add($"continuous over {basis}: {Pct(g1)} batch occupancy, {Pct(g2)} busy fraction, {Pct(g3)} est. bandwidth use, {Pct(g4)} est. compute use");
            if (verdictBasis is null && g1 is not null) { verdictBasis = basis; headline = g1; }
        }
        string ours = $"Utilisation read three ways over the same {s.Requests} requests with at most {batch} in flight: (1) the study's reading, " +
                      $"batch occupancy = time-averaged running requests / {batch} (vllm:num_requests_running over the batch size; docs/study.md); " +
                      "(2) busy fraction = time the GPU runs iterations / wall time; (3) estimated bandwidth and compute use from the cost model. " +
                      string.Join("; ", parts) + (verdictBasis is null ? "." : $". Verdict on (1) against {verdictBasis} (30-45% ± 5 points).");
        string verdict = headline is { } h ? Verdict.InRange(h, 0.30, 0.45, 0.05) : Verdict.NotMeasured;
        return (new Finding(BatchingId, BatchingClaim, ours, verdict, r.Commands.GetValueOrDefault(Experiments.Batching, ""), values), new UtilisationPanel(rows));
    }

    private static (Finding, SpeculativePanel?) Speculative(StudyFile s, StudyResults r)
    {
        if (Missing(s, r, Experiments.Speculative, s.Speculative) is { } why) return (NotMeasured(SpeculativeId, SpeculativeClaim, why, r, Experiments.Speculative), null);
        var sp = s.Speculative!;
        var points = new List<(double, double)>();
        var texts = new List<string>();
        var values = new SortedDictionary<string, double?>();
        double? general = null;
        foreach (var (suffix, value, text) in sp.Loads())
        {
            var b = r.Get(Experiments.Speculative, $"base-{suffix}");
            var x = r.Get(Experiments.Speculative, $"spec-{suffix}");
            if (b is null || x is null || x.Summary.MeanTpotMs <= 0) continue;
            double speedup = b.Summary.MeanTpotMs / x.Summary.MeanTpotMs;
            points.Add((value, speedup));
            texts.Add($"{Pct(speedup - 1)} at {text}");
            values[$"speedup_at_{suffix}"] = Math.Round(speedup, 4);
            bool studyLoad = sp.Batches is not null ? s.Load.ClosedBatch == (int)value : s.Load.ClosedBatch is null && s.Load.Rates[0] == value;
            if (studyLoad) general = speedup;
        }
        var speedups = points.Select(p => p.Item2).ToList();
        string generalText = general is { } g ? $"at the study's load ({s.Load.Describe()}) {Pct(g - 1)}" : $"median over the loads {(speedups.Count > 0 ? Pct(speedups.Median() - 1) : "n/a")}";
        string ours = speedups.Count == 0 ? "no load completed" :
            $"Speed-up = mean TPOT without / with speculative decoding ({sp.Method}, k = {sp.NumSpeculativeTokens}) at the same load: " +
            string.Join(", ", texts) + $". Best {Pct(speedups.Max() - 1)}; in general ({generalText}). " +
            "Reproduced when the best is 15-20% ± 5 points and the general gain under 10%.";
        if (speedups.Count > 0) { values["best_gain"] = Math.Round(speedups.Max() - 1, 4); values["general_gain"] = Math.Round((general ?? speedups.Median()) - 1, 4); }
        return (new Finding(SpeculativeId, SpeculativeClaim, ours, Verdict.Speculative(speedups, general), r.Commands.GetValueOrDefault(Experiments.Speculative, ""), values),
            new SpeculativePanel(sp.Batches is null ? "load (req/s)" : "closed batch size (requests)", points));
    }

    private static (Finding, KvPanel?) Kv(StudyFile s, StudyResults r)
    {
        if (Missing(s, r, Experiments.KvCompression, s.KvCompression) is { } why) return (NotMeasured(KvId, KvClaim, why, r, Experiments.KvCompression), null);
        var kv = s.KvCompression!;
        var full = r.Get(Experiments.KvCompression, "full");
        if (full is null || full.Summary.MeanKvCacheGib <= 0) return (NotMeasured(KvId, KvClaim, "the full-cache run did not complete", r, Experiments.KvCompression), null);
        var points = new List<(int, double, double?)>();
        var values = new SortedDictionary<string, double?>();
        foreach (var b in kv.Budgets)
        {
            var o = r.Get(Experiments.KvCompression, $"{kv.Policy}-{b}");
            if (o is null) continue;
            double cut = 1 - o.Summary.MeanKvCacheGib / full.Summary.MeanKvCacheGib;
            double? retention = o.Summary.EstimatedAccuracyRetention;
            points.Add((b, cut, retention));
            values[$"{b}.memory_cut"] = Math.Round(cut, 4);
            values[$"{b}.estimated_accuracy_retention"] = Round(retention);
        }
        var kept = points.Where(p => p.Item3 is { } q && q >= kv.KeptQuality).ToList();
        double? best = kept.Count > 0 ? kept.Max(p => p.Item2) : null;
        values["best_kept_memory_cut"] = Round(best);
        string ours = $"Memory cut = 1 - mean KV-cache GiB with {kv.Policy} / without, at Poisson {StudyPlan.Num(kv.Rate)} req/s on {kv.Dataset}; kept quality = estimated accuracy " +
                      $"retention >= {kv.KeptQuality:G3} (catalog/quality/kv_compression.yaml). " +
                      string.Join(", ", points.Select(p => $"budget {p.Item1}: {Share(p.Item2)} less at retention {(p.Item3 is { } q ? q.ToString("F3", CultureInfo.InvariantCulture) : "n/a")}")) +
                      (best is { } bc ? $". Largest cut that keeps quality: {Share(bc)}." : ". No budget keeps quality.");
        return (new Finding(KvId, KvClaim, ours, Verdict.KvCompression(best), r.Commands.GetValueOrDefault(Experiments.KvCompression, ""), values), new KvPanel(points));
    }

    private static (Finding, TokenBudgetPanel?) TokenBudget(StudyFile s, StudyResults r)
    {
        if (Missing(s, r, Experiments.TokenBudget, s.TokenBudget) is { } why) return (NotMeasured(TokenBudgetId, TokenBudgetClaim, why, r, Experiments.TokenBudget), null);
        var series = new List<(string, IReadOnlyList<(int, double, double?)>)>();
        var values = new SortedDictionary<string, double?>();
        var verdicts = new List<string>();
        var parts = new List<string>();
        foreach (var d in s.TokenBudget!.Datasets)
        {
            List<(int, double, double?)>? reasoning = null, standard = null;
            foreach (var role in new[] { "reasoning", "standard" })
            {
                string prefix = StudyPlan.PairName(s, 0, role);
                var pts = s.TokenBudgets.Select(b => (b, o: r.Get(Experiments.TokenBudget, $"{prefix}-{d}-{b}")))
                    .Where(x => x.o is { E2eMs.Length: > 0 }).Select(x => (x.b, x.o!.E2eMs.Average(), x.o.Accuracy)).ToList();
                if (pts.Count == 0) continue;
                series.Add(($"{prefix} {d}", pts));
                foreach (var (b, lat, a) in pts)
                {
                    values[$"{prefix}.{d}.{b}.mean_e2el_ms"] = Math.Round(lat, 1);
                    values[$"{prefix}.{d}.{b}.accuracy"] = Round(a);
                }
                if (role == "reasoning") reasoning = pts; else standard = pts;
            }
            if (reasoning is null) continue;
            var acc = reasoning.All(p => p.Item3 is not null) ? reasoning.Select(p => p.Item3!.Value).ToList() : null;
            verdicts.Add(Verdict.TokenBudget(reasoning.Select(p => p.Item2).ToList(), acc, standard?.Select(p => p.Item2).ToList()));
            parts.Add($"{d}: reasoning mean E2E {Seconds(reasoning[0].Item2)} at {reasoning[0].Item1} → {Seconds(reasoning[^1].Item2)} at {reasoning[^1].Item1} tokens" +
                      (acc is null ? " (accuracy not measured)" : $", accuracy {acc[0]:F3} → {acc[^1]:F3}") +
                      (standard is null ? "" : $"; standard {Seconds(standard[0].Item2)} → {Seconds(standard[^1].Item2)}" +
                          (standard.All(p => p.Item3 is not null) ? $", accuracy {standard[0].Item3:F3} → {standard[^1].Item3:F3}" : " (accuracy not measured)")));
        }
        string verdict = verdicts.Count == 0 ? Verdict.NotMeasured : verdicts.All(v => v == Verdict.Reproduced) ? Verdict.Reproduced : Verdict.Differs;
        string accSource = r.Source == "simulated" ? "estimated accuracy from the accuracy-vs-thinking-budget curves (catalog/quality/thinking_budget.yaml)" : "graded accuracy (--evaluate)";
        string ours = $"Per dataset, mean end-to-end latency and {accSource} at each max_tokens budget. " + string.Join("; ", parts) +
                      ". Reproduced when the reasoning model's latency grows with the budget (at least 1.5x end to end), its accuracy does not fall, and the standard model's latency grows less.";
        return (new Finding(TokenBudgetId, TokenBudgetClaim, ours, verdict, r.Commands.GetValueOrDefault(Experiments.TokenBudget, ""), values), new TokenBudgetPanel(series));
    }

    private static double? Round(double? v) => v is { } x ? Math.Round(x, 4) : null;

    internal static string Pct(double? fraction) => fraction is { } f ? (f >= 0 ? "+" : "") + (f * 100).ToString("F1", CultureInfo.InvariantCulture) + "%" : "n/a";

    internal static string Share(double fraction) => (fraction * 100).ToString("F1", CultureInfo.InvariantCulture) + "%";

    internal static string Seconds(double ms) => (ms / 1000).ToString(ms >= 10_000 ? "F0" : "F1", CultureInfo.InvariantCulture) + " s";
}
