using System.Text.Json.Serialization;
using RLMServing.Metrics;

namespace RLMServing.Validation;

/// <summary>
/// How far a prediction is from a measurement for one latency metric. Errors are relative and signed:
/// (predicted − measured) / measured, so −0.05 means the prediction is 5% low.
/// </summary>
public sealed record MetricComparison
{
    [JsonPropertyName("mean_error")] public double MeanError { get; init; }
    [JsonPropertyName("p50_error")] public double P50Error { get; init; }
    [JsonPropertyName("p90_error")] public double P90Error { get; init; }
    [JsonPropertyName("p99_error")] public double P99Error { get; init; }
    /// <summary>Mean over matched requests of |predicted − measured| / measured; null where there are no per-request values (ITL).</summary>
    [JsonPropertyName("mape")] public double? Mape { get; init; }
    [JsonPropertyName("measured_mean_ms")] public double MeasuredMeanMs { get; init; }
    [JsonPropertyName("predicted_mean_ms")] public double PredictedMeanMs { get; init; }
    [JsonPropertyName("measured_p99_ms")] public double MeasuredP99Ms { get; init; }
    [JsonPropertyName("predicted_p99_ms")] public double PredictedP99Ms { get; init; }
    [JsonPropertyName("requests_measured")] public int RequestsMeasured { get; init; }
    [JsonPropertyName("requests_predicted")] public int RequestsPredicted { get; init; }
    [JsonPropertyName("requests_matched")] public int? RequestsMatched { get; init; }
    /// <summary>How many measured runs were pooled.</summary>
    [JsonPropertyName("measured_runs")] public int MeasuredRuns { get; init; } = 1;
    /// <summary>Each measured run's mean error against its own prediction (one entry per measured run).</summary>
    [JsonPropertyName("run_mean_errors")] public List<double> RunMeanErrors { get; init; } = [];
    /// <summary>
    /// For repeats of one scenario against one prediction: the measurement's own run-to-run range, (largest − smallest
    /// repeat mean) / pooled mean; null otherwise. An error smaller than this is within the measurement's noise.
    /// </summary>
    [JsonPropertyName("measured_repeat_range")] public double? MeasuredRepeatRange { get; init; }
    [JsonPropertyName("verdict")] public string Verdict { get; init; } = "";
}

/// <summary>The result of <c>rlms validate</c>: one comparison per metric and an overall verdict.</summary>
public sealed record ValidationReport
{
    [JsonPropertyName("ttft")] public MetricComparison? Ttft { get; init; }
    [JsonPropertyName("tpot")] public MetricComparison? Tpot { get; init; }
    [JsonPropertyName("e2el")] public MetricComparison? E2el { get; init; }
    [JsonPropertyName("itl")] public MetricComparison? Itl { get; init; }
    [JsonPropertyName("tolerance")] public double Tolerance { get; init; }
    [JsonPropertyName("verdict")] public string Verdict { get; init; } = "";

    public IEnumerable<(string Name, MetricComparison Comparison)> Metrics()
    {
        if (Ttft is not null) yield return ("ttft", Ttft);
        if (Tpot is not null) yield return ("tpot", Tpot);
        if (E2el is not null) yield return ("e2el", E2el);
        if (Itl is not null) yield return ("itl", Itl);
    }
}

/// <summary>
/// Compares predicted runs with measured ones, request file against request file (same schema for simulated and
/// measured runs). Distribution errors use the runs' completed requests; MAPE uses the requests completed in both,
/// matched by request_id. A metric passes when |mean_error| ≤ tolerance; the comparison passes when every metric does.
/// Several measured runs are pooled, in one of two ways:
/// <list type="bullet">
/// <item>repeats: N measured runs of one scenario and seed against one prediction. The measured distribution is every
/// repeat's requests together (its mean is the mean of the repeats' means), MAPE compares each request's mean over the
/// repeats with its prediction, and <see cref="MetricComparison.MeasuredRepeatRange"/> says how far the repeats are
/// from each other: on a machine whose speed drifts that is the floor under any error.</item>
/// <item>pairs: N measured runs against N predictions, run i against prediction i (e.g. one seed each). Both sides
/// are pooled, MAPE matches requests within each pair. A statistic set by a few rare events (mean TTFT when a batch
/// fills up) is compared over more of them than one run holds.</item>
/// </list>
/// </summary>
public static class Validator
{
    public static ValidationReport Compare(IReadOnlyList<RequestRecord> measured, IReadOnlyList<RequestRecord> predicted,
        double tolerance, RunSummary? measuredSummary = null, RunSummary? predictedSummary = null) =>
        Compare([measured], [predicted], tolerance, measuredSummary is null ? null : [measuredSummary],
            predictedSummary is null ? null : [predictedSummary]);

    /// <param name="measuredRuns">One or more measured runs.</param>
    /// <param name="predictedRuns">One prediction for all measured runs (repeats), or one per measured run (pairs).</param>
    /// <param name="measuredSummaries">The measured runs' summaries, for ITL (averaged over the runs); null when any is missing.</param>
    /// <param name="predictedSummaries">The predicted runs' summaries, likewise.</param>
    public static ValidationReport Compare(IReadOnlyList<IReadOnlyList<RequestRecord>> measuredRuns,
        IReadOnlyList<IReadOnlyList<RequestRecord>> predictedRuns, double tolerance,
        IReadOnlyList<RunSummary>? measuredSummaries = null, IReadOnlyList<RunSummary>? predictedSummaries = null)
    {
        if (!(tolerance > 0)) throw new ArgumentOutOfRangeException(nameof(tolerance), "tolerance must be positive");
        if (measuredRuns.Count == 0) throw new ArgumentException("at least one measured run is needed", nameof(measuredRuns));
        if (predictedRuns.Count != 1 && predictedRuns.Count != measuredRuns.Count)
            throw new ArgumentException($"{predictedRuns.Count} predicted runs for {measuredRuns.Count} measured: give one, or one per measured run", nameof(predictedRuns));
        var m = measuredRuns.Select(Completed).ToList();
        var p = predictedRuns.Select(Completed).ToList();
        var ttft = Metric(m, p, r => r.TtftMs, tolerance);
        var tpot = Metric(m, p, r => r.TpotMs, tolerance);
        var e2el = Metric(m, p, r => r.E2elMs, tolerance);
        MetricComparison? itl = null;
        if (measuredSummaries is { Count: > 0 } ms && predictedSummaries is { Count: > 0 } ps && ms.All(s => s.MeanItlMs > 0) && ps.All(s => s.MeanItlMs > 0))
            itl = FromSummaries(ms, ps, tolerance);
        var report = new ValidationReport { Ttft = ttft, Tpot = tpot, E2el = e2el, Itl = itl, Tolerance = tolerance };
        bool pass = report.Metrics().Any() && report.Metrics().All(x => x.Comparison.Verdict == "pass");
        return report with { Verdict = pass ? "pass" : "fail" };
    }

    private static List<RequestRecord> Completed(IReadOnlyList<RequestRecord> run) => run.Where(r => r.Status == RequestStatus.Completed).ToList();

    /// <summary>
    /// The first request id present in one run and not in another, or null when the runs hold the same ids: runs of one
    /// scenario and seed serve the same requests.
    /// </summary>
    public static (int Run, long RequestId, bool Missing)? FirstIdMismatch(IReadOnlyList<IReadOnlyList<RequestRecord>> runs)
    {
        if (runs.Count < 2) return null;
        var first = runs[0].Select(r => r.RequestId).ToHashSet();
        for (int i = 1; i < runs.Count; i++)
        {
            var ids = runs[i].Select(r => r.RequestId).ToHashSet();
            foreach (var id in ids) if (!first.Contains(id)) return (i, id, false);
            foreach (var id in first) if (!ids.Contains(id)) return (i, id, true);
        }
        return null;
    }

    /// <summary>Signed relative error; zero when both are zero.</summary>
    public static double RelativeError(double predicted, double measured) =>
        measured == 0 ? (predicted == 0 ? 0 : double.PositiveInfinity * Math.Sign(predicted)) : (predicted - measured) / measured;

    private static MetricComparison? Metric(List<List<RequestRecord>> measured, List<List<RequestRecord>> predicted,
        Func<RequestRecord, double?> value, double tolerance)
    {
        var mv = Sorted(measured.SelectMany(run => run.Select(value)));
        var pv = Sorted(predicted.SelectMany(run => run.Select(value)));
        if (mv.Length == 0 || pv.Length == 0) return null;
        bool repeats = predicted.Count == 1;
        var ape = new List<double>();
        if (repeats)
        {
            // Each request's measured value: its mean over the repeats that completed it.
            var byId = new Dictionary<long, (double Sum, int N)>();
            foreach (var run in measured)
                foreach (var r in run)
                    if (value(r) is { } v)
                    {
                        var e = byId.GetValueOrDefault(r.RequestId);
                        byId[r.RequestId] = (e.Sum + v, e.N + 1);
                    }
            var predictedById = ById(predicted[0], value);
            foreach (var (id, (sum, n)) in byId)
                if (sum / n is var mvalue && mvalue > 0 && predictedById.TryGetValue(id, out var pvalue)) ape.Add(Math.Abs(pvalue - mvalue) / mvalue);
        }
        else
        {
            for (int i = 0; i < measured.Count; i++)
            {
                var predictedById = ById(predicted[i], value);
                foreach (var r in measured[i])
                    if (value(r) is { } mvalue && mvalue > 0 && predictedById.TryGetValue(r.RequestId, out var pvalue)) ape.Add(Math.Abs(pvalue - mvalue) / mvalue);
            }
        }
        double pooled = mv.Average();
        var runMeans = measured.Select(run => Mean(run, value)).ToList();
        var runErrors = runMeans.Select((mean, i) => RelativeError(Mean(predicted[repeats ? 0 : i], value), mean)).ToList();
        double? range = repeats && measured.Count > 1 ? (pooled == 0 ? 0 : (runMeans.Max() - runMeans.Min()) / pooled) : null;
        double error = RelativeError(pv.Average(), pooled);
        return new MetricComparison
        {
            MeanError = error,
            P50Error = RelativeError(Q(pv, 0.5), Q(mv, 0.5)),
            P90Error = RelativeError(Q(pv, 0.9), Q(mv, 0.9)),
            P99Error = RelativeError(Q(pv, 0.99), Q(mv, 0.99)),
            Mape = ape.Count > 0 ? ape.Average() : null,
            MeasuredMeanMs = pooled,
            PredictedMeanMs = pv.Average(),
            MeasuredP99Ms = Q(mv, 0.99),
            PredictedP99Ms = Q(pv, 0.99),
            RequestsMeasured = mv.Length,
            RequestsPredicted = pv.Length,
            RequestsMatched = ape.Count,
            MeasuredRuns = measured.Count,
            RunMeanErrors = runErrors,
            MeasuredRepeatRange = range,
            Verdict = Math.Abs(error) <= tolerance ? "pass" : "fail",
        };
    }

    private static Dictionary<long, double> ById(List<RequestRecord> run, Func<RequestRecord, double?> value)
    {
        var byId = new Dictionary<long, double>();
        foreach (var r in run) if (value(r) is { } v) byId[r.RequestId] = v;
        return byId;
    }

    private static double Mean(List<RequestRecord> run, Func<RequestRecord, double?> value) =>
        run.Select(value).Where(x => x is not null).Select(x => x!.Value).DefaultIfEmpty(double.NaN).Average();

    /// <summary>
    /// ITL has no per-request value in requests.parquet; its distribution comes from the runs' summaries (for several
    /// runs, each statistic averaged over them: the percentiles are then the runs' mean percentile, not the pooled one).
    /// </summary>
    private static MetricComparison FromSummaries(IReadOnlyList<RunSummary> measured, IReadOnlyList<RunSummary> predicted, double tolerance)
    {
        static RunSummary Average(IReadOnlyList<RunSummary> runs) => runs[0] with
        {
            MeanItlMs = runs.Average(s => s.MeanItlMs),
            MedianItlMs = runs.Average(s => s.MedianItlMs),
            P90ItlMs = runs.Average(s => s.P90ItlMs),
            P99ItlMs = runs.Average(s => s.P99ItlMs),
            Completed = runs.Sum(s => s.Completed),
        };
        var m = Average(measured);
        var p = Average(predicted);
        bool repeats = predicted.Count == 1;
        double? range = repeats && measured.Count > 1 && m.MeanItlMs > 0 ? (measured.Max(s => s.MeanItlMs) - measured.Min(s => s.MeanItlMs)) / m.MeanItlMs : null;
        double mean = RelativeError(p.MeanItlMs, m.MeanItlMs);
        return new MetricComparison
        {
            MeanError = mean,
            P50Error = RelativeError(p.MedianItlMs, m.MedianItlMs),
            P90Error = RelativeError(p.P90ItlMs, m.P90ItlMs),
            P99Error = RelativeError(p.P99ItlMs, m.P99ItlMs),
            Mape = null,
            MeasuredMeanMs = m.MeanItlMs,
            PredictedMeanMs = p.MeanItlMs,
            MeasuredP99Ms = m.P99ItlMs,
            PredictedP99Ms = p.P99ItlMs,
            RequestsMeasured = m.Completed,
            RequestsPredicted = p.Completed,
            RequestsMatched = null,
            MeasuredRuns = measured.Count,
            RunMeanErrors = measured.Select((s, i) => RelativeError(predicted[repeats ? 0 : i].MeanItlMs, s.MeanItlMs)).ToList(),
            MeasuredRepeatRange = range,
            Verdict = Math.Abs(mean) <= tolerance ? "pass" : "fail",
        };
    }

    private static double[] Sorted(IEnumerable<double?> xs) => Percentiles.Sorted(xs.Where(x => x is not null).Select(x => x!.Value));

    private static double Q(double[] sorted, double q) => Percentiles.Of(sorted, q);
}
