using System.Text;
using Plotly.NET;
using RLMServing.Metrics;
using Chart = Plotly.NET.CSharp.Chart;

namespace RLMServing.Reports;

/// <summary>
/// The report of one scenario's runs (one, or its variants side by side): key numbers, latency distributions
/// (histograms on log-spaced bins and CDFs, log axes, so the two modes of reasoning latency show), latency against
/// load, KV usage and queue length over time, and a variant comparison.
/// </summary>
public static class RunReport
{
    public const string DistributionSection = "Latency distributions";
    public const string LoadSection = "Latency against load";
    public const string TimeSection = "Over time";
    public const string ComparisonSection = "Variant comparison";

    /// <summary>Log-spaced histogram bins: enough to resolve two modes a decade apart, few enough to stay smooth.</summary>
    public const int HistogramBins = 60;
    public const int MaxCdfPoints = 400;
    public const int MaxScatterPoints = 2000;
    public const int MaxTimePoints = 2000;

    private sealed record Metric(string Id, string Name, string Unit, Func<RequestRecord, double?> Value);

    private static readonly Metric[] Latencies =
    [
        new("ttft", "TTFT (time to first token)", "ms", r => r.TtftMs),
        new("tpot", "TPOT (time per output token)", "ms", r => r.TpotMs),
        new("e2el", "E2EL (end-to-end latency)", "s", r => r.E2elMs / 1000),
    ];

    public static Report Build(RunsInput input)
    {
        var charts = new List<ReportChart>();
        foreach (var m in Latencies)
        {
            charts.Add(Histogram(input.Runs, m));
            charts.Add(Cdf(input.Runs, m));
        }
        var loads = input.Runs.Select(LoadAtArrival).ToList();
        charts.Add(AgainstLoad(input.Runs, loads, Latencies[0]));
        charts.Add(AgainstLoad(input.Runs, loads, Latencies[1]));
        charts.Add(KvUsage(input.Runs));
        charts.Add(QueueLength(input.Runs));
        if (input.Runs.Count > 1) charts.Add(Comparison(input.Runs));
        return new Report($"{input.Title}: simulation report", Header(input), charts);
    }

    private static ReportChart Histogram(IReadOnlyList<RunData> runs, Metric m)
    {
        var all = runs.SelectMany(r => Values(r, m)).Where(v => v > 0).ToList();
        var traces = new List<GenericChart>();
        if (all.Count > 0)
        {
            double lo = all.Min(), hi = Math.Max(all.Max(), lo * 1.0001);
            double step = Math.Log(hi / lo) / HistogramBins;
            var centers = Enumerable.Range(0, HistogramBins).Select(i => lo * Math.Exp((i + 0.5) * step)).ToArray();
            foreach (var run in runs)
            {
                var values = Values(run, m).Where(v => v > 0).ToList();
                var counts = new double[HistogramBins];
                foreach (var v in values) counts[Math.Clamp((int)(Math.Log(v / lo) / step), 0, HistogramBins - 1)]++;
                var percent = counts.Select(c => values.Count == 0 ? 0 : 100 * c / values.Count).ToArray();
                traces.Add(Chart.Scatter<double, double, string>(centers, percent, StyleParam.Mode.Lines, Name: run.Name)
                    .TraceStyle("line", new Dictionary<string, object> { ["shape"] = "hvh", ["width"] = 2 })
                    .TraceStyle("fill", "tozeroy")
                    .Hover($"{Format.Html(run.Name)}<br>%{{y:.1f}}% of requests near %{{x:.3s}} {m.Unit}<extra></extra>"));
            }
        }
        var chart = ChartKit.Combine(traces).Axes($"{m.Name}: histogram", $"{m.Name[..m.Name.IndexOf(' ')]} ({m.Unit}, log scale)", "share of completed requests (%)", logX: true);
        return new ReportChart($"{m.Id}-histogram", DistributionSection, $"{m.Id.ToUpperInvariant()} histogram", chart,
            $"{HistogramBins} log-spaced bins; each curve sums to 100%." + (m.Id == "e2el" ? " For a reasoning model, two humps are two populations: short answers and long chains of thought." : ""));
    }

    private static ReportChart Cdf(IReadOnlyList<RunData> runs, Metric m)
    {
        var traces = new List<GenericChart>();
        foreach (var run in runs)
        {
            var sorted = Values(run, m).Where(v => v > 0).Order().ToArray();
            if (sorted.Length == 0) continue;
            int points = Math.Min(sorted.Length, MaxCdfPoints);
            var idx = Enumerable.Range(0, points).Select(i => points == 1 ? 0 : (int)Math.Round(i * (sorted.Length - 1.0) / (points - 1))).Distinct().ToArray();
            traces.Add(Chart.Scatter<double, double, string>(idx.Select(i => sorted[i]).ToArray(), idx.Select(i => 100.0 * (i + 1) / sorted.Length).ToArray(), StyleParam.Mode.Lines, Name: run.Name)
                .TraceStyle("line", new Dictionary<string, object> { ["shape"] = "hv", ["width"] = 2 })
                .Hover($"{Format.Html(run.Name)}<br>%{{y:.1f}}% of requests within %{{x:.3s}} {m.Unit}<extra></extra>"));
        }
        var label = m.Name[..m.Name.IndexOf(' ')];
        var chart = ChartKit.Combine(traces).Axes($"{m.Name}: cumulative distribution", $"{label} ({m.Unit}, log scale)", "requests at or below (%)", logX: true);
        return new ReportChart($"{m.Id}-cdf", DistributionSection, $"{label} CDF", chart);
    }

    /// <summary>Requests in the system (waiting + running, all replicas) at each request's arrival, from the time series.</summary>
    private static Dictionary<long, int> LoadAtArrival(RunData run)
    {
        var totals = run.Timeseries.GroupBy(p => p.TimeS).OrderBy(g => g.Key)
            .Select(g => (Time: g.Key, InSystem: g.Sum(p => p.Waiting + p.Running))).ToArray();
        var times = totals.Select(t => t.Time).ToArray();
        var load = new Dictionary<long, int>();
        foreach (var r in run.Requests)
        {
            int i = Array.BinarySearch(times, r.ArrivalTimeS);
            if (i < 0) i = ~i - 1;
            load[r.RequestId] = i >= 0 ? totals[i].InSystem : 0;
        }
        return load;
    }

    private static ReportChart AgainstLoad(IReadOnlyList<RunData> runs, IReadOnlyList<Dictionary<long, int>> loads, Metric m)
    {
        var traces = new List<GenericChart>();
        for (int k = 0; k < runs.Count; k++)
        {
            var load = loads[k];
            var rows = runs[k].Requests.Where(r => m.Value(r) is > 0).ToList();
            int stride = Math.Max(1, (rows.Count + MaxScatterPoints - 1) / MaxScatterPoints);
            var shown = rows.Where((_, i) => i % stride == 0).ToList();
            traces.Add(Chart.Scatter<double, double, string>(shown.Select(r => (double)load[r.RequestId]).ToArray(), shown.Select(r => m.Value(r)!.Value).ToArray(), StyleParam.Mode.Markers,
                    Name: runs[k].Name, MultiText: shown.Select(r => $"request {r.RequestId}, {r.ThinkingTokens} thinking / {r.OutputTokens} output tokens").ToArray())
                .TraceStyle("marker", new Dictionary<string, object> { ["size"] = 5, ["opacity"] = 0.5 })
                .Hover($"{Format.Html(runs[k].Name)}<br>%{{text}}<br>%{{x}} requests in system at arrival<br>%{{y:.3s}} {m.Unit}<extra></extra>"));
        }
        var label = m.Name[..m.Name.IndexOf(' ')];
        var chart = ChartKit.Combine(traces).Axes($"{label} against load at arrival", "requests in the system at arrival (waiting + running, all replicas)", $"{label} ({m.Unit}, log scale)", logY: true);
        return new ReportChart($"{m.Id}-vs-load", LoadSection, $"{label} vs load", chart,
            runs.Any(r => r.Requests.Count > MaxScatterPoints) ? $"Every n-th request shown (at most {MaxScatterPoints} per run)." : null);
    }

    private static ReportChart KvUsage(IReadOnlyList<RunData> runs)
    {
        var traces = runs.Select(run =>
        {
            var points = Thin(run.Timeseries.GroupBy(p => p.TimeS).OrderBy(g => g.Key).Select(g => (g.Key, 100 * g.Average(p => p.KvUsage))).ToList());
            return Chart.Scatter<double, double, string>(points.Select(p => p.Item1).ToArray(), points.Select(p => p.Item2).ToArray(), StyleParam.Mode.Lines, Name: run.Name)
                .Hover($"{Format.Html(run.Name)}<br>t = %{{x:.1f}} s<br>KV cache %{{y:.1f}}% used<extra></extra>");
        });
        var chart = ChartKit.Combine(traces).Axes("KV cache usage over time (mean over replicas)", "simulated time (s)", "KV blocks in use (%)");
        return new ReportChart("kv-usage", TimeSection, "KV cache usage", chart);
    }

    private static ReportChart QueueLength(IReadOnlyList<RunData> runs)
    {
        var traces = new List<GenericChart>();
        foreach (var run in runs)
        {
            var points = Thin(run.Timeseries.GroupBy(p => p.TimeS).OrderBy(g => g.Key).Select(g => (g.Key, (double)g.Sum(p => p.Waiting), (double)g.Sum(p => p.Running))).ToList());
            traces.Add(Chart.Scatter<double, double, string>(points.Select(p => p.Item1).ToArray(), points.Select(p => p.Item2).ToArray(), StyleParam.Mode.Lines, Name: $"{run.Name}: waiting")
                .Hover($"{Format.Html(run.Name)}<br>t = %{{x:.1f}} s<br>%{{y}} waiting<extra></extra>"));
            traces.Add(Chart.Scatter<double, double, string>(points.Select(p => p.Item1).ToArray(), points.Select(p => p.Item3).ToArray(), StyleParam.Mode.Lines, Name: $"{run.Name}: running")
                .TraceStyle("line", new Dictionary<string, object> { ["dash"] = "dot" })
                .Hover($"{Format.Html(run.Name)}<br>t = %{{x:.1f}} s<br>%{{y}} running<extra></extra>"));
        }
        var chart = ChartKit.Combine(traces).Axes("Queue length over time (all replicas)", "simulated time (s)", "requests");
        return new ReportChart("queue-length", TimeSection, "Queue length", chart, "Waiting: queued, not yet admitted. Running: admitted (prefilling or decoding).");
    }

    private static ReportChart Comparison(IReadOnlyList<RunData> runs)
    {
        (string Name, Func<RunSummary, double> Value)[] bars =
        [
            ("TTFT p50", s => s.MedianTtftMs / 1000), ("TTFT p99", s => s.P99TtftMs / 1000),
            ("TTFAT p50", s => s.MedianTtfatMs / 1000), ("TTFAT p99", s => s.P99TtfatMs / 1000),
            ("E2EL p50", s => s.MedianE2elMs / 1000), ("E2EL p99", s => s.P99E2elMs / 1000),
        ];
        var traces = runs.Select(run => Chart.Column<double, string, string>(bars.Select(b => Math.Max(b.Value(run.Summary), 1e-6)).ToArray(), Keys: bars.Select(b => b.Name).ToArray(), Name: run.Name)
            .Hover($"{Format.Html(run.Name)}<br>%{{x}}: %{{y:.3s}} s<extra></extra>"));
        var chart = ChartKit.Combine(traces).Axes("Latency by variant (median and p99)", "metric", "seconds (log scale)", logY: true);
        return new ReportChart("variant-comparison", ComparisonSection, "Variant comparison", chart,
            "TTFAT: time to the first answer token, after the thinking tokens; what a user of a reasoning model waits for.");
    }

    /// <summary>The summary's extra percentile keys of one metric (p50_ttft_ms, p99.9_ttft_ms, …), read back from summary.json.</summary>
    private static IEnumerable<(string Key, double P, double Value)> ExtraPercentiles(RunSummary s, string metric) =>
        (s.Percentiles ?? []).Select(kv => (kv.Key, Value: MetricPercentiles.ValueOf(kv.Value)))
            .Where(kv => kv.Value is not null && MetricPercentiles.TryParseKey(kv.Key, out _, out var m) && m == metric)
            .Select(kv => { MetricPercentiles.TryParseKey(kv.Key, out var p, out _); return (kv.Key, p, kv.Value!.Value); });

    private static IEnumerable<double> Values(RunData run, Metric m) =>
        run.Requests.Where(r => r.Status == RequestStatus.Completed).Select(m.Value).Where(v => v is { } x && double.IsFinite(x)).Select(v => v!.Value);

    private static List<T> Thin<T>(List<T> points)
    {
        int stride = Math.Max(1, (points.Count + MaxTimePoints - 1) / MaxTimePoints);
        return stride == 1 ? points : points.Where((_, i) => i % stride == 0).ToList();
    }

    private static string Header(RunsInput input)
    {
        var first = input.Runs[0].Summary;
        var html = new StringBuilder();
        html.Append("<p>Scenario <b>").Append(Format.Html(input.Title)).Append("</b>, seed <b>").Append(first.Seed)
            .Append("</b>, ").Append(input.Runs.Count == 1 ? "one run" : $"{input.Runs.Count} variants").Append(".</p>\n");
        foreach (var run in input.Runs.Where(r => r.Summary.Unstable))
            html.Append("<p class=\"warn\">").Append(Format.Html(run.Name)).Append(": unstable, the offered load cannot be sustained (")
                .Append(Format.Html(run.Summary.UnstableReason ?? "")).Append(").</p>\n");
        html.Append("<table class=\"key\"><thead><tr><th>metric</th>");
        foreach (var run in input.Runs) html.Append("<th>").Append(Format.Html(run.Name)).Append("</th>");
        html.Append("</tr></thead><tbody>\n");
        void Row(string name, Func<RunSummary, string> value)
        {
            html.Append("<tr><td>").Append(name).Append("</td>");
            foreach (var run in input.Runs) html.Append("<td>").Append(Format.Html(value(run.Summary))).Append("</td>");
            html.Append("</tr>\n");
        }
        Row("model", s => s.Model);
        Row("hardware", s => $"{s.Replicas} x {s.TensorParallel} x {s.Gpu}");
        Row("batching", s => s.Batching);
        Row("completed / rejected", s => $"{s.Completed} / {s.Rejected}");
        Row("request throughput (req/s)", s => Format.Fixed(s.RequestThroughput, 2));
        Row("output throughput (tok/s)", s => Format.Fixed(s.OutputThroughput, 0));
        if (input.Runs.Any(r => r.Summary.RequestGoodput is not null)) Row("request goodput (req/s)", s => s.RequestGoodput is { } g ? Format.Fixed(g, 2) : "-");
        Row("TTFT median / p99 (s)", s => $"{Format.Fixed(s.MedianTtftMs / 1000, 2)} / {Format.Fixed(s.P99TtftMs / 1000, 2)}");
        Row("TTFAT median / p99 (s)", s => $"{Format.Fixed(s.MedianTtfatMs / 1000, 2)} / {Format.Fixed(s.P99TtfatMs / 1000, 2)}");
        Row("TPOT median / p99 (ms)", s => $"{Format.Fixed(s.MedianTpotMs, 1)} / {Format.Fixed(s.P99TpotMs, 1)}");
        Row("E2EL median / p99 (s)", s => $"{Format.Fixed(s.MedianE2elMs / 1000, 1)} / {Format.Fixed(s.P99E2elMs / 1000, 1)}");
        // metrics.percentiles: the extra pNN keys the run carries, one row per metric (TTFT p50 · p95 · p99.9).
        foreach (var (metric, name, toUnit, unit) in new (string, string, double, string)[]
                     { ("ttft", "TTFT", 1000, "s"), ("ttfat", "TTFAT", 1000, "s"), ("tpot", "TPOT", 1, "ms"), ("itl", "ITL", 1, "ms"), ("e2el", "E2EL", 1000, "s") })
        {
            var keys = input.Runs.SelectMany(r => ExtraPercentiles(r.Summary, metric)).Select(k => k.P).Distinct().Order().ToList();
            if (keys.Count == 0) continue;
            Row($"{name} {string.Join(" / ", keys.Select(p => "p" + MetricPercentiles.Word(p)))} ({unit})", s =>
                string.Join(" / ", keys.Select(p => ExtraPercentiles(s, metric).FirstOrDefault(k => k.P == p) is { Key: not null } k ? Format.Fixed(k.Value / toUnit, unit == "s" ? 2 : 1) : "-")));
        }
        if (input.Runs.Any(r => r.Summary.SteadyState is not null))
        {
            Row("steady window (s; warm-up and drain left out)", s => s.SteadyState is { } w ? $"{Format.Fixed(w.StartS, 0)} – {Format.Fixed(w.EndS, 0)} (warm-up {Format.Fixed(w.WarmupS, 0)}, drain {Format.Fixed(w.DrainS, 0)})" : "-");
            if (input.Runs.Any(r => r.Summary.SteadyState?.GoodputFraction is not null))
                Row("requests within the SLO, steady window", s => s.SteadyState?.GoodputFraction is { } g ? Format.Percent(g) : "-");
        }
        if (input.Runs.Any(r => r.Summary.SloMet is not null)) Row("slo percentile limits met", s => s.SloMet is { } m ? (m ? "yes" : "NO") : "-");
        Row("mean thinking tokens", s => Format.Fixed(s.MeanThinkingTokens, 0));
        Row("peak / mean KV usage", s => $"{Format.Percent(s.PeakKvCacheUsage)} / {Format.Percent(s.MeanKvCacheUsage)}");
        Row("preemptions", s => s.Preemptions.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Row("stable", s => s.Unstable ? "NO" : "yes");
        html.Append("</tbody></table>\n");
        return html.ToString();
    }
}
