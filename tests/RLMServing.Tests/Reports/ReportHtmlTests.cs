using System.Text.RegularExpressions;
using RLMServing.Cli.Commands;
using RLMServing.Reports;
using RLMServing.Tests.Cli;
using Xunit;

namespace RLMServing.Tests.Reports;

public class ReportHtmlTests
{
    /// <summary>The page with the inlined plotly.js taken out: what the report itself says and links to.</summary>
    private static string WithoutPlotlyJs(string html)
    {
        var plotly = ReportPage.PlotlyJs().Replace("</script", "<\\/script");
        int at = html.IndexOf(plotly, StringComparison.Ordinal);
        Assert.True(at >= 0, "plotly.js is not inlined in the page");
        Assert.Equal(-1, html.IndexOf(plotly, at + plotly.Length, StringComparison.Ordinal));   // once, not once per chart
        return html.Remove(at, plotly.Length);
    }

    private static void AssertSelfContained(string html)
    {
        var own = WithoutPlotlyJs(html);
        Assert.DoesNotMatch(new Regex(@"<script[^>]*\ssrc\s*=", RegexOptions.IgnoreCase), html);
        Assert.DoesNotMatch(new Regex(@"<link\b", RegexOptions.IgnoreCase), html);
        Assert.DoesNotMatch(new Regex(@"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}/", RegexOptions.IgnoreCase), own);
        Assert.DoesNotContain("cdn", own, StringComparison.OrdinalIgnoreCase);
    }

    private static IReadOnlyList<string> ChartIds(string html) =>
        Regex.Matches(html, "data-chart=\"([^\"]+)\"").Select(m => m.Groups[1].Value).ToList();

    [Fact]
    public void VariantsReportHasEveryChartAndNoExternalUrl()
    {
        var out_ = Path.Combine(RlmsProcess.TempDir(), "r.html");
        var o = RlmsProcess.Run("report", ReportFixtures.QuickstartRun, "--out", out_);
        Assert.True(o.ExitCode == 0, o.Stderr);
        var html = File.ReadAllText(out_);
        Assert.Equal([.. ReportFixtures.RunChartIds, "variant-comparison"], ChartIds(html));
        foreach (var id in ChartIds(html)) Assert.Contains($"Plotly.newPlot(\"{id}\"", html);
        AssertSelfContained(html);
        // The header names the scenario, the seed and both variants with their key numbers.
        Assert.Contains("Scenario <b>quickstart</b>, seed <b>42</b>", html);
        Assert.Contains("<th>reasoning</th><th>standard</th>", html);
        Assert.Contains("TTFT median / p99 (s)", html);
        // Latency axes are logarithmic and say their unit.
        Assert.Contains("\"text\":\"TTFT (ms, log scale)\"},\"type\":\"log\"", html);
        Assert.Contains("\"text\":\"E2EL (s, log scale)\"},\"type\":\"log\"", html);
    }

    [Fact]
    public async Task ReasoningLatencyHistogramShowsTwoModes()
    {
        // The quickstart's reasoning model thinks briefly on 60% of prompts and for thousands of tokens on 40%: its
        // E2EL histogram, on log-spaced bins, must have two separated peaks with a valley between them.
        var report = await ReportBuilder.BuildAsync(Path.Combine(ReportFixtures.QuickstartRun, "reasoning"));
        var (data, _) = ChartKit.ToJson(report.Charts.Single(c => c.Id == "e2el-histogram").Chart);
        var y = Regex.Match(data, "\"y\":\\[([^\\]]*)\\]").Groups[1].Value.Split(',').Select(double.Parse).ToArray();
        var smooth = y.Select((_, i) => y.Skip(Math.Max(0, i - 2)).Take(5 - Math.Max(0, 2 - i)).Average()).ToArray();
        var peaks = Enumerable.Range(1, smooth.Length - 2).Where(i => smooth[i] > smooth[i - 1] && smooth[i] >= smooth[i + 1] && smooth[i] > 0.5 * smooth.Max()).ToList();
        Assert.True(peaks.Count >= 2, $"one mode only: {string.Join(' ', smooth.Select(v => v.ToString("F1")))}");
        var (a, b) = (peaks.First(), peaks.Last());
        Assert.True(smooth[a..b].Min() < 0.7 * Math.Min(smooth[a], smooth[b]), "no valley between the modes");
    }

    [Fact]
    public async Task SingleRunReportHasNoComparisonChart()
    {
        var report = await ReportBuilder.BuildAsync(Path.Combine(ReportFixtures.QuickstartRun, "standard"));
        Assert.Equal(ReportFixtures.RunChartIds, report.Charts.Select(c => c.Id));
    }

    [Fact]
    public void SweepReportHasHeatmapsLoadParetoAndCapacity()
    {
        var dir = ReportFixtures.WriteCapacitySweep();
        var o = RlmsProcess.Run("report", dir);
        Assert.True(o.ExitCode == 0, o.Stderr);
        var html = File.ReadAllText(Path.Combine(dir, "report.html"));
        Assert.Equal(ReportFixtures.SweepChartIds, ChartIds(html));
        AssertSelfContained(html);
        Assert.Contains("Sweep <b>capacity-test</b>: 9 configurations, 18 runs", html);
        // The Pareto table lists the sweep's frontier (chunked prefill at each size), cheapest first, and nothing else.
        var table = html[html.IndexOf("Pareto frontier (cheapest first)", StringComparison.Ordinal)..];
        table = table[..table.IndexOf("</table>", StringComparison.Ordinal)];
        Assert.Equal(["32", "64", "128"], Regex.Matches(table, "<td>chunked_prefill</td><td>([0-9]+)</td>").Select(m => m.Groups[1].Value));
        Assert.DoesNotContain("<td>static</td>", table);
        // Hover on the Pareto chart names the configuration's axis values.
        Assert.Contains("batching policy: chunked_prefill<br>max sequences per batch: 128", html);
    }

    [Fact]
    public async Task SweepAxesFallBackToColumnsThatAreNotMetrics()
    {
        var dir = ReportFixtures.WriteRateSweepWithoutManifest();
        var report = await ReportBuilder.BuildAsync(Path.Combine(dir, "results.parquet"));
        Assert.Contains("<code>workload.arrival.rate</code>, <code>hardware.gpu</code>", report.HeaderHtml);
        Assert.Equal(["heatmap-p99-ttft-ms", "heatmap-mean-tpot-ms", "heatmap-request-throughput", "ttft-vs-load", "tpot-vs-load", "pareto"], report.Charts.Select(c => c.Id));
        // Load is the rate axis; one series per GPU. Without a capacity search, cost is GPU-hours per million tokens.
        var (data, layout) = ChartKit.ToJson(report.Charts.Single(c => c.Id == "ttft-vs-load").Chart);
        Assert.Contains("arrival rate (offered load, req/s)", layout);
        Assert.Contains("\"name\":\"A100-SXM-80G\"", data);
        Assert.Contains("\"name\":\"H100-SXM-80G\"", data);
        Assert.Contains("GPU-hours per million output tokens", ChartKit.ToJson(report.Charts.Single(c => c.Id == "pareto").Chart).Layout);
    }

    [Fact]
    public void RunWithNothingCompletedStillGivesEveryChart()
    {
        var rejected = Enumerable.Range(0, 5).Select(i => new RLMServing.Metrics.RequestRecord(i, i, 100_000, 0, 0, RLMServing.Metrics.RequestStatus.Rejected,
            null, null, null, null, 0, 0, "prompt larger than the KV cache", false)).ToList();
        var run = new RunData("tiny-gpu", new RLMServing.Metrics.RunSummary { Scenario = "s", Rejected = 5 }, rejected, []);
        var report = RunReport.Build(new RunsInput("s", "s", [run]));
        Assert.Equal(ReportFixtures.RunChartIds, report.Charts.Select(c => c.Id));
        Assert.Contains("\"name\":\"no data\"", ChartKit.ToJson(report.Charts[0].Chart).Data);
        Assert.Contains("data-chart=\"queue-length\"", ReportPage.Render(report));
    }

    [Fact]
    public async Task SkewedCapacityAnswersReadAtAGlance()
    {
        // GPUs needed span 2..64 and cost 0.37..38 $/M tokens: both axes go logarithmic with a note saying why, labels
        // are formatted in words and units, and the unconverged answer is marked.
        var report = await ReportBuilder.BuildAsync(ReportFixtures.WriteSkewedCapacitySweep());
        var capacity = report.Charts.Single(c => c.Id == "capacity");
        var (data, layout) = ChartKit.ToJson(capacity.Chart);
        Assert.Contains("\"text\":\"GPUs (replicas × GPUs per replica), log scale\"},\"type\":\"log\"", layout);
        Assert.Contains("Log axis: the largest needs 32 times the smallest.", capacity.Note);
        Assert.Contains("$0.37 / M tokens", data);
        Assert.DoesNotContain("0.367825", data);
        Assert.Matches("A100[^\"]*\\(not converged\\)", data);
        var pareto = report.Charts.Single(c => c.Id == "pareto");
        var (_, paretoLayout) = ChartKit.ToJson(pareto.Chart);
        Assert.Contains("\"text\":\"cost (USD per million output tokens), log scale\"},\"type\":\"log\"", paretoLayout);
        Assert.Contains("Cost is on a log axis", pareto.Note);
        Assert.DoesNotContain("capacity.gpus_for_target", layout);
    }

    [Fact]
    public void ParetoFrontierKeepsOnlyUndominatedPoints()
    {
        (double, double)?[] points = [(1, 10), (2, 5), (3, 5), (2, 8), null, (4, 1), (4, 1)];
        Assert.Equal([true, true, false, false, false, true, true], SweepReport.Frontier(points));
    }

    [Fact]
    public async Task SameResultsGiveByteIdenticalReports()
    {
        // One report from the CLI, one from this process: nothing may depend on the process (hash seeds, ids, time).
        var dir = ReportFixtures.WriteCapacitySweep();
        var a = Path.Combine(dir, "a.html");
        var b = Path.Combine(dir, "b.html");
        Assert.Equal(0, RlmsProcess.Run("report", dir, "--out", a).ExitCode);
        await ReportBuilder.WriteAsync(dir, b);
        Assert.Equal(File.ReadAllBytes(a), File.ReadAllBytes(b));
    }

    [Theory]
    [InlineData("missing")]
    [InlineData("empty")]
    [InlineData("notjson")]
    public void BadResultsAreOneLineAndExitCode2(string kind)
    {
        var dir = RlmsProcess.TempDir();
        var target = Path.Combine(dir, "nowhere");
        if (kind == "empty") target = dir;
        if (kind == "notjson") { File.WriteAllText(Path.Combine(dir, "summary.json"), "{ not json"); target = dir; }
        var o = RlmsProcess.Run("report", target, "--out", Path.Combine(dir, "r.html"));
        Assert.Equal(2, o.ExitCode);
        Assert.Single(o.Stderr.Trim().Split('\n'));
        Assert.StartsWith("error: ", o.Stderr);
        Assert.False(File.Exists(Path.Combine(dir, "r.html")));
        Assert.Empty(Directory.GetFiles(dir, "*.tmp"));
    }

    [Fact]
    public void SimulateWithReportWritesItBesideTheResults()
    {
        var dir = RlmsProcess.TempDir();
        var scenario = Path.Combine(RlmsProcess.RepoRoot(), "scenarios", "quickstart.yaml");
        var o = RlmsProcess.Run("simulate", scenario, "--out", dir, "--set", "workload.requests=60", "--quiet", "--report");
        Assert.True(o.ExitCode == 0, o.Stderr);
        Assert.Contains("data-chart=\"variant-comparison\"", File.ReadAllText(Path.Combine(dir, "report.html")));
        var elsewhere = Path.Combine(dir, "elsewhere.html");
        o = RlmsProcess.Run("simulate", "--report", elsewhere, scenario, "--out", dir, "--set", "workload.requests=60", "--quiet");
        Assert.True(o.ExitCode == 0, o.Stderr);
        Assert.True(File.Exists(elsewhere));
    }

    [Fact]
    public void ReportOptionTakesOnlyAnHtmlPath()
    {
        Assert.Equal(["simulate", "s.yaml", "--report", SimulateCommand.DefaultReport], SimulateCommand.NormalizeReportOption(["simulate", "s.yaml", "--report"]));
        Assert.Equal(["simulate", "--report", SimulateCommand.DefaultReport, "s.yaml"], SimulateCommand.NormalizeReportOption(["simulate", "--report", "s.yaml"]));
        Assert.Equal(["simulate", "s.yaml", "--report", "x/r.html", "--quiet"], SimulateCommand.NormalizeReportOption(["simulate", "s.yaml", "--report", "x/r.html", "--quiet"]));
        Assert.Equal(["report", "--report"], SimulateCommand.NormalizeReportOption(["report", "--report"]));
    }
}
