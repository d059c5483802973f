using System.Text;
using Plotly.NET;
using Chart = Plotly.NET.CSharp.Chart;

namespace RLMServing.Reports;

/// <summary>
/// The report of a sweep (results.parquet): heatmaps of metrics over two axes, latency against load, the Pareto
/// frontier of cost against latency with every configuration's details on hover, and GPUs needed per configuration
/// when a capacity search ran. Configurations are averaged over their seeds.
/// </summary>
public static class SweepReport
{
    public const string HeatmapSection = "Heatmaps";
    public const string LoadSection = "Latency against load";
    public const string CostSection = "Cost and capacity";
    public const int MaxSeries = 12;
    public const string DefaultParetoLatency = "p99_ttft_ms";
    public const string CostColumn = "cost.usd_per_million_tokens";

    /// <summary>Metrics drawn as heatmaps when the results have them, with how to read them.</summary>
    private static readonly (string Column, string Label, bool LowerIsBetter)[] HeatmapMetrics =
    [
        ("p99_ttft_ms", "p99 TTFT (ms)", true),
        ("mean_tpot_ms", "mean TPOT (ms)", true),
        ("request_goodput", "request goodput (req/s)", false),
        ("request_throughput", "request throughput (req/s)", false),
        ("capacity.max_rate", "max sustainable rate under the SLO (req/s)", false),
        (CostColumn, "cost (USD per million output tokens)", true),
    ];

    private sealed record Config(int[] Rows, int Index);

    public static Report Build(SweepInput input)
    {
        var r = input.Results;
        var configs = r.Configurations().Select((rows, i) => new Config(rows, i)).ToList();
        var charts = new List<ReportChart>();
        var notes = new List<string>();
        var varied = r.Axes.Where(a => configs.Select(c => r.Text(a, c.Rows[0])).Distinct().Count() > 1).ToList();
        if (varied.Count >= 2)
        {
            foreach (var (column, label, lower) in HeatmapMetrics.Where(m => r.IsNumeric(m.Column) && configs.Any(c => r.Mean(m.Column, c.Rows) is not null)))
                charts.Add(Heatmap(r, configs, varied[0], varied[1], column, label, lower, varied.Count > 2));
        }
        else notes.Add("No heatmaps: they need two axes with more than one value each.");
        var (loadAxis, loadLabel) = LoadAxis(r, varied);
        foreach (var (metric, label) in new[] { ("p99_ttft_ms", "p99 TTFT (ms)"), ("mean_tpot_ms", "mean TPOT (ms)") })
            if (r.IsNumeric(metric) && loadAxis is not null) charts.Add(AgainstLoad(r, configs, varied, loadAxis, loadLabel, metric, label));
        var latency = r.ParetoLatency is { } pl && r.IsNumeric(pl) ? pl : DefaultParetoLatency;
        var cost = Cost(r, configs);
        if (cost is not null && r.IsNumeric(latency)) charts.Add(ParetoChart(r, configs, varied, cost.Value, latency));
        else notes.Add($"No Pareto frontier: it needs {latency} and a cost ({CostColumn}, or replicas, tensor_parallel and output_throughput).");
        if (r.IsNumeric("capacity.gpus_for_target")) charts.Add(Capacity(r, configs, varied));
        return new Report($"{input.Title}: sweep report", Header(input, configs, varied, cost, latency, notes), charts);
    }

    private static string Label(SweepResults r, IEnumerable<string> axes, Config c) =>
        string.Join(", ", axes.Select(a => ColumnLabels.Short(a, r.Text(a, c.Rows[0]))));

    /// <summary>Axis values sorted as numbers when they all are, else in order of first appearance.</summary>
    private static List<string> Levels(SweepResults r, IReadOnlyList<Config> configs, string axis)
    {
        var levels = configs.Select(c => r.Text(axis, c.Rows[0])).Distinct().ToList();
        return r.IsNumeric(axis) ? levels.OrderBy(v => double.Parse(v, System.Globalization.CultureInfo.InvariantCulture)).ToList() : levels;
    }

    private static ReportChart Heatmap(SweepResults r, IReadOnlyList<Config> configs, string xAxis, string yAxis, string metric, string label, bool lowerIsBetter, bool averaged)
    {
        var xs = Levels(r, configs, xAxis);
        var ys = Levels(r, configs, yAxis);
        var z = new List<double?[]>();
        var text = new List<string[]>();
        foreach (var y in ys)
        {
            var row = new double?[xs.Count];
            var hover = new string[xs.Count];
            for (int i = 0; i < xs.Count; i++)
            {
                var cell = configs.Where(c => r.Text(xAxis, c.Rows[0]) == xs[i] && r.Text(yAxis, c.Rows[0]) == y).ToList();
                row[i] = r.Mean(metric, cell.SelectMany(c => c.Rows));
                hover[i] = $"{cell.Count} configuration(s), {cell.Sum(c => c.Rows.Length)} run(s)";
            }
            z.Add(row);
            text.Add(hover);
        }
        // Built on zeros, then given the real cells: an empty cell (null) is left blank by plotly.js.
        var chart = Chart.Heatmap<double, string, string, string>(z.Select(row => row.Select(_ => 0.0).ToArray()).ToArray(), X: xs.ToArray(), Y: ys.ToArray())
            .TraceStyle("z", z)
            .TraceStyle("text", text)
            .TraceStyle("colorscale", "Viridis")
            .TraceStyle("reversescale", lowerIsBetter)     // the better end is always the light (yellow) one
            .TraceStyle("colorbar", new Dictionary<string, object> { ["title"] = new Dictionary<string, string> { ["text"] = label } })
            .Hover($"{Format.Html(ColumnLabels.Describe(xAxis))}: %{{x}}<br>{Format.Html(ColumnLabels.Describe(yAxis))}: %{{y}}<br>{Format.Html(label)}: %{{z:.3s}}<br>%{{text}}<extra></extra>")
            .Axes(label, ColumnLabels.Describe(xAxis), ColumnLabels.Describe(yAxis), categoryX: true, categoryY: true);
        var id = "heatmap-" + metric.Replace('.', '-').Replace('_', '-');
        return new ReportChart(id, HeatmapSection, $"Heatmap: {label}", chart,
            (averaged ? "Mean over the other axes and the seeds. " : "Mean over the seeds. ") + (lowerIsBetter ? "Lighter is better (lower)." : "Lighter is better (higher)."));
    }

    /// <summary>A rate axis if the sweep has one (e.g. workload.arrival.rate), else the achieved request throughput.</summary>
    private static (string? Column, string Label) LoadAxis(SweepResults r, IReadOnlyList<string> varied)
    {
        var rate = varied.FirstOrDefault(a => r.IsNumeric(a) && a.EndsWith("rate", StringComparison.OrdinalIgnoreCase));
        if (rate is not null) return (rate, $"{ColumnLabels.Describe(rate).Split(" (")[0]} (offered load, req/s)");
        return r.IsNumeric("request_throughput") ? ("request_throughput", "request throughput (achieved load, req/s)") : (null, "");
    }

    private static ReportChart AgainstLoad(SweepResults r, IReadOnlyList<Config> configs, IReadOnlyList<string> varied, string loadColumn, string loadLabel, string metric, string label)
    {
        // Over a rate axis: one curve per combination of the other axes. Against achieved throughput: one curve per
        // value of the first axis, through the configurations of the others (a latency-throughput trade-off curve).
        var others = loadColumn == "request_throughput" ? varied.Take(1).ToList() : varied.Where(a => a != loadColumn).ToList();
        var groups = configs.GroupBy(c => others.Count == 0 ? "all configurations" : Label(r, others, c)).ToList();
        var traces = new List<GenericChart>();
        foreach (var g in groups.Take(MaxSeries))
        {
            var points = g.Select(c => (X: r.Mean(loadColumn, c.Rows), Y: r.Mean(metric, c.Rows), C: c))
                .Where(p => p.X is not null && p.Y is > 0).OrderBy(p => p.X).ToList();
            traces.Add(Chart.Scatter<double, double, string>(points.Select(p => p.X!.Value).ToArray(), points.Select(p => p.Y!.Value).ToArray(), StyleParam.Mode.Lines_Markers,
                    Name: g.Key, MultiText: points.Select(p => Label(r, r.Axes, p.C)).ToArray())
                .Hover($"%{{text}}<br>load %{{x:.3s}}<br>{Format.Html(label)}: %{{y:.4s}}<extra></extra>"));
        }
        var chart = ChartKit.Combine(traces).Axes($"{label} against load", loadLabel, $"{label}, log scale", logY: true);
        var id = metric.StartsWith("p99_ttft") ? "ttft-vs-load" : "tpot-vs-load";
        return new ReportChart(id, LoadSection, $"{label} vs load", chart,
            (groups.Count > MaxSeries ? $"First {MaxSeries} of {groups.Count} series shown. " : "") + (others.Count == 0 ? "" : $"One series per value of {string.Join(", ", others)}; hover for each configuration."));
    }

    private readonly record struct CostInfo(string Label, double?[] PerConfig, bool FromSweep);

    /// <summary>
    /// Cost per configuration: the capacity search's USD per million tokens when present, else GPU-hours per million
    /// output tokens (replicas x tensor_parallel GPUs at the achieved output throughput).
    /// </summary>
    private static CostInfo? Cost(SweepResults r, IReadOnlyList<Config> configs)
    {
        if (r.IsNumeric(CostColumn)) return new CostInfo("cost (USD per million output tokens)", configs.Select(c => r.Mean(CostColumn, c.Rows)).ToArray(), FromSweep: true);
        if (!r.IsNumeric("replicas") || !r.IsNumeric("tensor_parallel") || !r.IsNumeric("output_throughput")) return null;
        return new CostInfo("GPU-hours per million output tokens", configs.Select(c =>
            r.Mean("replicas", c.Rows) * r.Mean("tensor_parallel", c.Rows) is { } gpus && r.Mean("output_throughput", c.Rows) is > 0 and var tput
                ? gpus * 1e6 / (tput * 3600) : (double?)null).ToArray(), FromSweep: false);
    }

    /// <summary>Configurations on the frontier: no other is at least as cheap and as fast and strictly better in one.</summary>
    public static bool[] Frontier(IReadOnlyList<(double Cost, double Latency)?> points)
    {
        var on = new bool[points.Count];
        for (int i = 0; i < points.Count; i++)
        {
            if (points[i] is not { } p) continue;
            on[i] = !points.Any(q => q is { } o && o.Cost <= p.Cost && o.Latency <= p.Latency && (o.Cost < p.Cost || o.Latency < p.Latency));
        }
        return on;
    }

    /// <summary>
    /// Each configuration's (cost, latency) and whether it is on the frontier: the sweep's own pareto column when the
    /// cost is the sweep's (it may also apply the SLO), the frontier of the points otherwise.
    /// </summary>
    private static (List<(double Cost, double Latency)?> Points, bool[] OnFrontier) FrontierOf(SweepResults r, IReadOnlyList<Config> configs, CostInfo cost, string latency)
    {
        var points = configs.Select(c => cost.PerConfig[c.Index] is { } x && r.Mean(latency, c.Rows) is { } y && double.IsFinite(x) ? ((double, double)?)(x, y) : null).ToList();
        var onFrontier = r.IsNumeric(SweepResults.Pareto) && cost.FromSweep
            ? configs.Select(c => points[c.Index] is not null && r.Mean(SweepResults.Pareto, c.Rows) is > 0).ToArray()
            : Frontier(points);
        return (points, onFrontier);
    }

    /// <summary>Hover lines of a configuration: its axis values and the capacity answer, formatted.</summary>
    private static string Details(SweepResults r, Config c)
    {
        var lines = new List<string> { $"config {r.Text(SweepResults.ConfigId, c.Rows[0])}" };
        lines.AddRange(r.Axes.Select(a => $"{Format.Html(ColumnLabels.Describe(a))}: {Format.Html(r.Text(a, c.Rows[0]))}"));
        if (r.Mean("capacity.max_rate", c.Rows) is { } rate) lines.Add($"max rate under the SLO: {Format.Rate(rate)}{(NotConverged(r, c) ? " (not converged)" : "")}");
        if (r.Mean("capacity.gpus_for_target", c.Rows) is { } gpus) lines.Add($"GPUs for the target rate: {Format.Number(gpus)}");
        if (r.Mean(CostColumn, c.Rows) is { } usd) lines.Add($"cost: {Format.UsdPerMillionTokens(usd)}");
        if (r.Mean("request_throughput", c.Rows) is { } tput) lines.Add($"request throughput: {Format.Rate(tput)}");
        if (r.Mean("mean_tpot_ms", c.Rows) is { } tpot) lines.Add($"mean time per output token: {Format.Fixed(tpot, 1)} ms");
        return string.Join("<br>", lines);
    }

    /// <summary>True when any seed's capacity search of the configuration stopped at its cap before the answer settled.</summary>
    private static bool NotConverged(SweepResults r, Config c) => r.IsNumeric(Converged) && r.Mean(Converged, c.Rows) is < 1;

    public const string Converged = "capacity.converged";

    /// <summary>A log axis when the values span more than this factor: one outlier would otherwise squash the rest.</summary>
    public const double LogSpan = 5;

    private static ReportChart ParetoChart(SweepResults r, IReadOnlyList<Config> configs, IReadOnlyList<string> varied, CostInfo cost, string latency)
    {
        var (points, onFrontier) = FrontierOf(r, configs, cost, latency);
        string costHover = cost.FromSweep ? "$%{x:.2f} / M tokens" : "%{x:.3s} GPU-hours / M tokens";
        GenericChart Series(bool frontier, string name)
        {
            var chosen = configs.Where(c => points[c.Index] is not null && onFrontier[c.Index] == frontier).OrderBy(c => points[c.Index]!.Value.Item1).ToList();
            return Chart.Scatter<double, double, string>(chosen.Select(c => points[c.Index]!.Value.Item1).ToArray(), chosen.Select(c => points[c.Index]!.Value.Item2).ToArray(),
                    frontier ? StyleParam.Mode.Lines_Markers : StyleParam.Mode.Markers, Name: name, MultiText: chosen.Select(c => Details(r, c)).ToArray())
                .TraceStyle("marker", new Dictionary<string, object> { ["size"] = frontier ? 10 : 7, ["opacity"] = frontier ? 1.0 : 0.45 })
                .TraceStyle("line", new Dictionary<string, object> { ["shape"] = "hv" })
                .Hover($"%{{text}}<br>{costHover}<br>{Format.Html(ColumnLabels.Describe(latency))}: %{{y:.3s}}<extra></extra>");
        }
        var costs = points.Where(p => p is { Cost: > 0 }).Select(p => p!.Value.Cost).ToList();
        double span = costs.Count == 0 ? 1 : costs.Max() / costs.Min();
        bool logX = span > LogSpan;
        var chart = ChartKit.Combine([Series(false, "configurations"), Series(true, "Pareto frontier")])
            .Axes($"Cost against latency: the Pareto frontier", cost.Label + (logX ? ", log scale" : ""), $"{ColumnLabels.Describe(latency)}, log scale", logX: logX, logY: true);
        return new ReportChart("pareto", CostSection, "Pareto frontier", chart,
            "Each point is a configuration (mean over seeds); the frontier joins those that no other beats on both cost and latency. Hover for the configuration."
            + (logX ? $" Cost is on a log axis: the costs span a factor of {Format.Fixed(span, 0)}, and a linear axis would squash the cheap end where the frontier lies." : ""));
    }

    private static ReportChart Capacity(SweepResults r, IReadOnlyList<Config> configs, IReadOnlyList<string> varied)
    {
        // plotly.js draws the first category at the bottom: most GPUs first puts the fewest at the top.
        var rows = configs.Select(c => (C: c, Gpus: r.Mean("capacity.gpus_for_target", c.Rows))).Where(p => p.Gpus is not null).OrderByDescending(p => p.Gpus).ToList();
        var labels = rows.Select(p => (varied.Count > 0 ? Label(r, varied, p.C) : $"config {r.Text(SweepResults.ConfigId, p.C.Rows[0])}")
            + (NotConverged(r, p.C) ? " (not converged)" : "")).ToArray();
        var text = rows.Select(p => $"{Format.Number(p.Gpus!.Value)} GPUs" + (r.IsNumeric(CostColumn) && r.Mean(CostColumn, p.C.Rows) is { } cost ? $" · {Format.UsdPerMillionTokens(cost)}" : "")).ToArray();
        double span = rows.Count == 0 ? 1 : rows.Max(p => p.Gpus!.Value) / Math.Max(1, rows.Min(p => p.Gpus!.Value));
        bool logX = span > LogSpan;
        var chart = Chart.Bar<double, string, string>(rows.Select(p => p.Gpus!.Value).ToArray(), Keys: labels, Name: "GPUs for the target rate", MultiText: text)
            .TraceStyle("textposition", "auto")
            .Hover("%{y}<br>%{text}<br>" + "%{customdata}<extra></extra>")
            .TraceStyle("customdata", rows.Select(p => Details(r, p.C)).ToArray())
            .Axes("GPUs needed for the target rate", "GPUs (replicas × GPUs per replica)" + (logX ? ", log scale" : ""), "configuration", logX: logX, categoryY: true);
        return new ReportChart("capacity", CostSection, "GPUs for the target", chart,
            "Fewest at the top; each bar is labelled with its GPUs and cost per million output tokens."
            + (logX ? $" Log axis: the largest needs {Format.Fixed(span, 0)} times the smallest." : "")
            + (rows.Any(p => NotConverged(r, p.C)) ? " (not converged): the capacity answer still moved at the largest horizon the search ran." : ""));
    }

    private static string Header(SweepInput input, IReadOnlyList<Config> configs, IReadOnlyList<string> varied, CostInfo? cost, string latency, IReadOnlyList<string> notes)
    {
        var r = input.Results;
        var html = new StringBuilder();
        html.Append("<p>Sweep <b>").Append(Format.Html(input.Title)).Append("</b>: ").Append(configs.Count).Append(" configurations, ")
            .Append(r.RowCount).Append(" runs (configuration x seed). Axes: ")
            .Append(r.Axes.Count == 0 ? "none found" : string.Join(", ", r.Axes.Select(a => $"<code>{Format.Html(a)}</code>"))).Append(".</p>\n");
        if (r.IsNumeric(SweepResults.Seed))
        {
            var seeds = r.Numbers(SweepResults.Seed)!.Where(s => s is not null).Select(s => s!.Value).Distinct().Order().ToList();
            html.Append("<p>Seeds: ").Append(string.Join(", ", seeds.Select(Format.Number))).Append(".</p>\n");
        }
        foreach (var n in notes) html.Append("<p>").Append(Format.Html(n)).Append("</p>\n");
        if (cost is { } c && r.IsNumeric(latency))
        {
            var (points, front) = FrontierOf(r, configs, c, latency);
            var best = configs.Where(k => front[k.Index]).OrderBy(k => points[k.Index]!.Value.Item1).ToList();
            html.Append("<p>Pareto frontier (cheapest first):</p>\n<table class=\"key\"><thead><tr>");
            foreach (var a in r.Axes) html.Append("<th>").Append(Format.Html(ColumnLabels.Describe(a))).Append("</th>");
            html.Append("<th>").Append(Format.Html(c.Label)).Append("</th><th>").Append(Format.Html(ColumnLabels.Describe(latency))).Append("</th>");
            string[] extra = ["capacity.max_rate", "capacity.gpus_for_target", "request_throughput"];
            foreach (var e in extra.Where(r.IsNumeric)) html.Append("<th>").Append(Format.Html(ColumnLabels.Describe(e))).Append("</th>");
            html.Append("</tr></thead><tbody>\n");
            foreach (var k in best)
            {
                html.Append("<tr>");
                foreach (var a in r.Axes) html.Append("<td>").Append(Format.Html(r.Text(a, k.Rows[0]))).Append("</td>");
                double usd = points[k.Index]!.Value.Item1;
                html.Append("<td>").Append(c.FromSweep ? Format.UsdPerMillionTokens(usd) : Format.Number(usd)).Append("</td><td>").Append(Format.Number(points[k.Index]!.Value.Item2)).Append("</td>");
                foreach (var e in extra.Where(r.IsNumeric))
                    html.Append("<td>").Append(r.Mean(e, k.Rows) is not { } v ? "-" : e == "capacity.gpus_for_target" ? Format.Number(v)
                        : Format.Rate(v) + (e == "capacity.max_rate" && NotConverged(r, k) ? " (not converged)" : "")).Append("</td>");
                html.Append("</tr>\n");
            }
            html.Append("</tbody></table>\n");
        }
        return html.ToString();
    }
}
