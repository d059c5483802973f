using System.Text;
using Plotly.NET;
using RLMServing.Reports;
using Chart = Plotly.NET.CSharp.Chart;

namespace RLMServing.Study;

/// <summary>
/// report.html of a study: the findings table, then one panel per finding with its chart (latency histogram with
/// the modes marked, utilisation bars, speed-up against load, memory and quality against the compression budget,
/// latency and accuracy against the token budget). The page is the report machinery's (offline, plotly inlined).
/// </summary>
public static class StudyReport
{
    public static readonly string[] ChartIds = ["study-bimodal", "study-utilisation", "study-speculative", "study-kv", "study-budget-latency", "study-budget-accuracy"];

    public static Report Build(StudyFile study, StudyResults results, StudyAnalysis a)
    {
        var header = new StringBuilder();
        header.Append("<p>").Append(Format.Html($"Study '{study.Name}' ({results.Source}): {study.Primary.Reasoning}" +
            (study.Primary.Standard is { } s ? $" vs {s}" : "") + $" on {study.Gpu} (TP {study.TensorParallel}), {study.Requests} requests per run, {study.Load.Describe()}.")).Append("</p>\n");
        if (results.Server.Count > 0)
            header.Append("<p>").Append(Format.Html("Server: " + string.Join("; ", results.Server.Select(kv => $"{kv.Key} = {kv.Value}")))).Append("</p>\n");
        header.Append("<table><tr><th>finding</th><th>verdict</th><th>ours</th></tr>\n");
        foreach (var f in a.Findings)
            header.Append("<tr><td>").Append(Format.Html(f.Id)).Append("</td><td>").Append(Format.Html(f.Verdict)).Append("</td><td>")
                .Append(Format.Html(f.Ours)).Append("</td></tr>\n");
        header.Append("</table>\n");
        var f0 = a.Findings.ToDictionary(f => f.Id);
        var charts = new List<ReportChart>
        {
            new(ChartIds[0], "Bimodal latency", "End-to-end latency (log scale) with the fitted modes", BimodalChart(a.Bimodal), Note(f0[FindingsBuilder.BimodalId])),
            new(ChartIds[1], "Batching and utilisation", "Utilisation by batching policy, three readings", UtilisationChart(a.Utilisation), Note(f0[FindingsBuilder.BatchingId])),
            new(ChartIds[2], "Speculative decoding", "Speed-up against load", SpeculativeChart(a.Speculative), Note(f0[FindingsBuilder.SpeculativeId])),
            new(ChartIds[3], "KV-cache compression", "Memory cut and estimated quality against the KV budget", KvChart(a.Kv), Note(f0[FindingsBuilder.KvId])),
            new(ChartIds[4], "Token budget", "Mean end-to-end latency against the token budget", BudgetChart(a.TokenBudget, accuracy: false), Note(f0[FindingsBuilder.TokenBudgetId])),
            new(ChartIds[5], "Token budget", "Accuracy against the token budget", BudgetChart(a.TokenBudget, accuracy: true), null),
        };
        return new Report($"rlms study: {study.Name}", header.ToString(), charts);
    }

    private static string Note(Finding f) => $"{f.Verdict}. {f.Claim}";

    private static GenericChart BimodalChart(BimodalPanel? p)
    {
        var traces = new List<GenericChart>();
        if (p is not null)
        {
            foreach (var (variant, e2e, test) in p.Runs)
            {
                // Histogram on log-spaced bins: the modes of a reasoning workload sit a decade or more apart.
                var logs = e2e.Where(v => v > 0).Select(v => Math.Log10(v / 1000)).ToArray();
                double lo = logs.Min(), hi = logs.Max();
                int bins = 30;
                double w = Math.Max((hi - lo) / bins, 1e-9);
                var counts = new double[bins];
                foreach (var l in logs) counts[Math.Min(bins - 1, (int)((l - lo) / w))]++;
                var centers = Enumerable.Range(0, bins).Select(i => Math.Pow(10, lo + (i + 0.5) * w)).ToArray();
                var share = counts.Select(c => 100 * c / logs.Length).ToArray();
                traces.Add(Chart.Scatter<double, double, string>(centers, share, StyleParam.Mode.Lines, Name: variant).TraceStyle("line", new Dictionary<string, object> { ["shape"] = "hvh" }));
                if (test.Bimodal)
                {
                    double top = share.Max();
                    foreach (var m in test.ModesMs.Take(2))
                        traces.Add(Chart.Scatter<double, double, string>(new[] { m / 1000, m / 1000 }, new[] { 0.0, top }, StyleParam.Mode.Lines, Name: $"{variant}: mode {m / 1000:G3} s")
                            .TraceStyle("line", new Dictionary<string, object> { ["dash"] = "dash" }));
                }
            }
        }
        return ChartKit.Combine(traces).Axes("End-to-end latency", "end-to-end latency (s)", "requests (%)", logX: true);
    }

    private static GenericChart UtilisationChart(UtilisationPanel? p)
    {
        var traces = new List<GenericChart>();
        if (p is not null)
        {
            var names = p.Rows.Select(r => r.Policy).ToArray();
            (string Name, Func<(string, double?, double?, double?, double?), double?> Get)[] series =
            [
                ("batch occupancy (the study's reading)", r => r.Item2), ("busy fraction", r => r.Item3),
                ("est. bandwidth use", r => r.Item4), ("est. compute use", r => r.Item5),
            ];
            foreach (var (name, get) in series)
            {
                var rows = p.Rows.Where(r => get(r) is not null).ToList();
                if (rows.Count == 0) continue;
                traces.Add(Chart.Column<double, string, string>(rows.Select(r => 100 * get(r)!.Value).ToArray(), Keys: rows.Select(r => r.Policy).ToArray(), Name: name));
            }
        }
        return ChartKit.Combine(traces).Axes("Utilisation", "batching", "utilisation (%)", categoryX: true);
    }

    private static GenericChart SpeculativeChart(SpeculativePanel? p)
    {
        var traces = new List<GenericChart>();
        if (p is { Points.Count: > 0 })
        {
            traces.Add(Chart.Scatter<double, double, string>(p.Points.Select(x => x.Load).ToArray(), p.Points.Select(x => x.Speedup).ToArray(), StyleParam.Mode.Lines_Markers, Name: "speed-up (TPOT)"));
            var rates = new[] { p.Points.Min(x => x.Load), p.Points.Max(x => x.Load) };
            traces.Add(Chart.Scatter<double, double, string>(rates, new[] { 1.15, 1.15 }, StyleParam.Mode.Lines, Name: "claim: 1.15").TraceStyle("line", new Dictionary<string, object> { ["dash"] = "dot" }));
            traces.Add(Chart.Scatter<double, double, string>(rates, new[] { 1.20, 1.20 }, StyleParam.Mode.Lines, Name: "claim: 1.20").TraceStyle("line", new Dictionary<string, object> { ["dash"] = "dot" }));
        }
        return ChartKit.Combine(traces).Axes("Speculative decoding", p?.LoadAxis ?? "load", "speed-up (x)", logX: true);
    }

    private static GenericChart KvChart(KvPanel? p)
    {
        var traces = new List<GenericChart>();
        if (p is { Points.Count: > 0 })
        {
            var x = p.Points.Select(q => (double)q.Budget).ToArray();
            traces.Add(Chart.Scatter<double, double, string>(x, p.Points.Select(q => 100 * q.MemoryCut).ToArray(), StyleParam.Mode.Lines_Markers, Name: "memory cut (%)"));
            var withQ = p.Points.Where(q => q.Retention is not null).ToList();
            if (withQ.Count > 0)
                traces.Add(Chart.Scatter<double, double, string>(withQ.Select(q => (double)q.Budget).ToArray(), withQ.Select(q => 100 * q.Retention!.Value).ToArray(), StyleParam.Mode.Lines_Markers, Name: "est. accuracy retention (%)"));
        }
        return ChartKit.Combine(traces).Axes("KV-cache compression", "KV budget (tokens)", "%");
    }

    private static GenericChart BudgetChart(TokenBudgetPanel? p, bool accuracy)
    {
        var traces = new List<GenericChart>();
        if (p is not null)
            foreach (var (name, pts) in p.Series)
            {
                var shown = accuracy ? pts.Where(q => q.Accuracy is not null).ToList() : pts.ToList();
                if (shown.Count == 0) continue;
                traces.Add(Chart.Scatter<double, double, string>(shown.Select(q => (double)q.Budget).ToArray(),
                    shown.Select(q => accuracy ? 100 * q.Accuracy!.Value : q.MeanE2eMs / 1000).ToArray(), StyleParam.Mode.Lines_Markers, Name: name));
            }
        return ChartKit.Combine(traces).Axes(accuracy ? "Accuracy" : "Latency", "token budget (max_tokens)", accuracy ? "accuracy (%)" : "mean end-to-end latency (s)", logX: true);
    }
}
