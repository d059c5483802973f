using System.Diagnostics;
using System.Net;
using System.Text.Json;
using System.Text.RegularExpressions;
using RLMServing.Reports;
using RLMServing.Tests.Cli;
using Xunit;

namespace RLMServing.Tests.Reports;

/// <summary>
/// Opens reports in a real browser: Debian's chromium, headless, with every network lookup failing. A probe script
/// added in front of the page records script errors (window errors, unhandled rejections, console.error), every
/// resource the page fetched, and how many plotly SVG layers each chart div holds once the page has loaded; the
/// DOM dump carries that record back. `.ci/run` installs chromium; RLMS_CHROMIUM names another binary.
/// </summary>
public class ReportBrowserTests
{
    private const string Probe = """
        <script>
        window.__rlmsErrors = [];
        window.addEventListener('error', e => window.__rlmsErrors.push('error: ' + (e.message || (e.target && (e.target.src || e.target.href)) || e.type)), true);
        window.addEventListener('unhandledrejection', e => window.__rlmsErrors.push('unhandled rejection: ' + e.reason));
        (function () { const original = console.error; console.error = function () { window.__rlmsErrors.push('console.error: ' + Array.from(arguments).join(' ')); original.apply(console, arguments); }; })();
        window.addEventListener('load', () => setTimeout(() => {
          const record = {
            errors: window.__rlmsErrors,
            resources: performance.getEntriesByType('resource').map(r => r.name),
            charts: Array.from(document.querySelectorAll('[data-chart]')).map(d => ({ id: d.id, svgs: d.querySelectorAll('svg.main-svg').length, traces: (d.data || []).length, width: d.getBoundingClientRect().width })),
          };
          const pre = document.createElement('pre');
          pre.id = 'rlms-probe';
          pre.textContent = JSON.stringify(record);
          document.body.appendChild(pre);
        }, 500));
        </script>
        """;

    private sealed record ChartState(string Id, int Svgs, int Traces, double Width);
    private sealed record ProbeRecord(string[] Errors, string[] Resources, ChartState[] Charts);

    private static string Chromium()
    {
        var path = Environment.GetEnvironmentVariable("RLMS_CHROMIUM") is { Length: > 0 } p ? p : "/usr/bin/chromium";
        Assert.True(File.Exists(path), $"chromium not found at {path}: install Debian's chromium (apt-get install chromium; .ci/run does) or set RLMS_CHROMIUM");
        return path;
    }

    /// <summary>Loads the page in headless chromium, offline, and returns the probe's record and chromium's log.</summary>
    private static (ProbeRecord Record, string Log) Open(string reportPath)
    {
        var dir = RlmsProcess.TempDir();
        var page = Path.Combine(dir, "page.html");
        var html = File.ReadAllText(reportPath);
        int head = html.IndexOf("<head>", StringComparison.Ordinal) + "<head>".Length;
        File.WriteAllText(page, html.Insert(head, Probe));
        var psi = new ProcessStartInfo(Chromium()) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[]
        {
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run", "--disable-extensions",
            "--user-data-dir=" + Path.Combine(dir, "profile"), "--window-size=1400,1000",
            // Offline: no name resolves and every proxied request goes to a closed port.
            "--host-resolver-rules=MAP * ~NOTFOUND", "--proxy-server=http://127.0.0.1:9",
            "--enable-logging=stderr", "--v=0", "--virtual-time-budget=15000", "--dump-dom", new Uri(page).AbsoluteUri,
        }) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(90_000)) { p.Kill(true); Assert.Fail("chromium did not finish loading the report in 90 s"); }
        var dom = stdout.Result;
        var m = Regex.Match(dom, "<pre id=\"rlms-probe\">(.*?)</pre>", RegexOptions.Singleline);
        Assert.True(m.Success, $"the page did not finish loading (no probe record); chromium exit {p.ExitCode}: {Tail(stderr.Result)}");
        var record = JsonSerializer.Deserialize<ProbeRecord>(WebUtility.HtmlDecode(m.Groups[1].Value), new JsonSerializerOptions { PropertyNameCaseInsensitive = true })!;
        return (record, stderr.Result);
    }

    private static string Tail(string s) => s.Length > 2000 ? s[^2000..] : s;

    private static void AssertRendered(string reportPath, IReadOnlyList<string> expectedCharts)
    {
        var (record, log) = Open(reportPath);
        Assert.True(record.Errors.Length == 0, "script errors: " + string.Join(" | ", record.Errors));
        Assert.DoesNotContain("Uncaught", log);
        Assert.True(record.Resources.Length == 0, "the page fetched: " + string.Join(", ", record.Resources));
        Assert.Equal(expectedCharts, record.Charts.Select(c => c.Id));
        foreach (var c in record.Charts)
        {
            Assert.True(c.Svgs >= 1, $"chart {c.Id} was not drawn (no .main-svg)");
            Assert.True(c.Traces >= 1, $"chart {c.Id} has no data");
            Assert.True(c.Width > 300, $"chart {c.Id} is {c.Width} px wide");
        }
    }

    [Fact]
    public async Task RunAndSweepReportsRenderOfflineWithoutScriptErrors()
    {
        var run = Path.Combine(RlmsProcess.TempDir(), "run.html");
        await ReportBuilder.WriteAsync(ReportFixtures.QuickstartRun, run);
        var sweep = ReportFixtures.WriteCapacitySweep();
        await ReportBuilder.WriteAsync(sweep, Path.Combine(sweep, "report.html"));
        // The two pages load in parallel: each is one chromium process, mostly waiting on its own renderer.
        var checks = new[]
        {
            Task.Run(() => AssertRendered(run, [.. ReportFixtures.RunChartIds, "variant-comparison"])),
            Task.Run(() => AssertRendered(Path.Combine(sweep, "report.html"), ReportFixtures.SweepChartIds)),
        };
        await Task.WhenAll(checks);
    }

    [Fact]
    public void TheStudyReportRendersOfflineWithEveryPanelDrawn()
    {
        var dir = RlmsProcess.TempDir();
        var study = Path.Combine(dir, "study.yaml");
        File.WriteAllText(study, RLMServing.Tests.Study.StudyTests.Tiny);
        var o = RlmsProcess.Run("study", study, "--out", Path.Combine(dir, "out"), "--quiet");
        Assert.True(o.ExitCode == 0, o.Stderr);
        AssertRendered(Path.Combine(dir, "out", "report.html"), RLMServing.Study.StudyReport.ChartIds);
    }
}
