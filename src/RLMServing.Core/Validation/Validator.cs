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
/// Compares a predicted run with a measured one, request file against request file (same schema for simulated and
/// measured runs). Distribution errors use each run's completed requests; MAPE uses the requests completed in both,
/// matched by request_id. A metric passes when |mean_error| ≤ tolerance; the run passes when every metric does.
/// </summary>
public static class Validator
{
    public static ValidationReport Compare(IReadOnlyList<RequestRecord> measured, IReadOnlyList<RequestRecord> predicted,
        double tolerance, RunSummary? measuredSummary = null, RunSummary? predictedSummary = null)
    {
        if (!(tolerance > 0)) throw new ArgumentOutOfRangeException(nameof(tolerance), "tolerance must be positive");
        var m = measured.Where(r => r.Status == RequestStatus.Completed).ToList();
        var p = predicted.Where(r => r.Status == RequestStatus.Completed).ToList();
        var ttft = Metric(m, p, r => r.TtftMs, tolerance);
        var tpot = Metric(m, p, r => r.TpotMs, tolerance);
        var e2el = Metric(m, p, r => r.E2elMs, tolerance);
        MetricComparison? itl = null;
        if (measuredSummary is not null && predictedSummary is not null && measuredSummary.MeanItlMs > 0 && predictedSummary.MeanItlMs > 0)
            itl = FromSummaries(measuredSummary, predictedSummary, tolerance);
        var report = new ValidationReport { Ttft = ttft, Tpot = tpot, E2el = e2el, Itl = itl, Tolerance = tolerance };
        bool pass = report.Metrics().Any() && report.Metrics().All(x => x.Comparison.Verdict == "pass");
        return report with { Verdict = pass ? "pass" : "fail" };
    }

    /// <summary>Signed relative error; zero when both are zero.</summary>
    public static double RelativeError(double predicted, double measured) =>
        measured == 0 ? (predicted == 0 ? 0 : double.PositiveInfinity * Math.Sign(predicted)) : (predicted - measured) / measured;

    private static MetricComparison? Metric(List<RequestRecord> measured, List<RequestRecord> predicted,
        Func<RequestRecord, double?> value, double tolerance)
    {
        var mv = Sorted(measured.Select(value));
        var pv = Sorted(predicted.Select(value));
        if (mv.Length == 0 || pv.Length == 0) return null;
        var predictedById = new Dictionary<long, double>();
        foreach (var r in predicted) if (value(r) is { } v) predictedById[r.RequestId] = v;
        var ape = new List<double>();
        foreach (var r in measured)
            if (value(r) is { } mvalue && mvalue > 0 && predictedById.TryGetValue(r.RequestId, out var pvalue))
                ape.Add(Math.Abs(pvalue - mvalue) / mvalue);
        double mean = RelativeError(pv.Average(), mv.Average());
        return new MetricComparison
        {
            MeanError = mean,
            P50Error = RelativeError(Q(pv, 0.5), Q(mv, 0.5)),
            P90Error = RelativeError(Q(pv, 0.9), Q(mv, 0.9)),
            P99Error = RelativeError(Q(pv, 0.99), Q(mv, 0.99)),
            Mape = ape.Count > 0 ? ape.Average() : null,
            MeasuredMeanMs = mv.Average(),
            PredictedMeanMs = pv.Average(),
            MeasuredP99Ms = Q(mv, 0.99),
            PredictedP99Ms = Q(pv, 0.99),
            RequestsMeasured = mv.Length,
            RequestsPredicted = pv.Length,
            RequestsMatched = ape.Count,
            Verdict = Math.Abs(mean) <= tolerance ? "pass" : "fail",
        };
    }

    /// <summary>ITL has no per-request value in requests.parquet; its distribution comes from the runs' summaries.</summary>
    private static MetricComparison FromSummaries(RunSummary m, RunSummary p, double tolerance)
    {
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
            Verdict = Math.Abs(mean) <= tolerance ? "pass" : "fail",
        };
    }

    private static double[] Sorted(IEnumerable<double?> xs) => Percentiles.Sorted(xs.Where(x => x is not null).Select(x => x!.Value));

    private static double Q(double[] sorted, double q) => Percentiles.Of(sorted, q);
}
