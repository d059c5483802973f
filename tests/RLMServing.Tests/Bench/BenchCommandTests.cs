using RLMServing.Tests.Cli;
using Xunit;
using static RLMServing.Tests.Bench.FakeOpenAiServer;

namespace RLMServing.Tests.Bench;

/// <summary>`rlms bench` as a user runs it: the real binary against the fake server; bad flags are one line and exit 2.</summary>
public class BenchCommandTests
{
    [Fact]
    public async Task BenchThenValidateAndReportTheFolder()
    {
        await using var server = await StartAsync((_, _) => Chat(2, 2, gapMs: 1));
        var dir = Path.Combine(RlmsProcess.TempDir(), "bench");
        var bench = RlmsProcess.Run("bench", "--base-url", server.BaseUrl, "--model", "m", "--num-prompts", "6", "--input-len", "4", "--output-len", "3",
            "--request-rate", "200", "--seed", "3", "--result-dir", dir, "--vllm-json", "--ready-check-timeout-sec", "10", "--num-warmups", "2",
            "--goodput", "ttft:1000", "tpot:1000", "--percentile-metrics", "ttft,ttfat,e2el", "--metric-percentiles", "50,90");
        Assert.True(bench.ExitCode == 0, bench.Stderr + bench.Stdout);
        Assert.Equal(6 + 2 + 1, server.Count);   // the measured requests, the warm-ups and the ready check
        foreach (var f in new[] { "requests.parquet", "summary.json", "timeseries.parquet", "chunks.parquet", "vllm-result.json" })
            Assert.True(File.Exists(Path.Combine(dir, f)), f);
        var requests = Path.Combine(dir, "requests.parquet");
        var validate = RlmsProcess.Run("validate", "--measured", requests, "--predicted", requests);
        Assert.True(validate.ExitCode == 0, validate.Stderr);
        var html = Path.Combine(dir, "report.html");
        var report = RlmsProcess.Run("report", dir, "--out", html);
        Assert.True(report.ExitCode == 0, report.Stderr);
        Assert.True(File.Exists(html));
    }

    [Fact]
    public async Task InterruptingStopsSendingAndWritesWhatWasMeasured()
    {
        // Requests 0-2 finish at once; the rest stream for 30 s. SIGTERM (as Ctrl-C) arrives while they stream.
        await using var server = await StartAsync((i, _) => i < 3 ? Chat(1, 1) : new FakeReply([new(0, Role()), new(0, Content("a")), new(30_000, Content("b")), new(0, Done)]));
        var dir = Path.Combine(RlmsProcess.TempDir(), "bench");
        var psi = new System.Diagnostics.ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { Path.Combine(AppContext.BaseDirectory, "rlms.dll"), "bench", "--base-url", server.BaseUrl, "--model", "m",
                     "--num-prompts", "200", "--request-rate", "20", "--input-len", "4", "--output-len", "2", "--result-dir", dir,
                     "--ready-check-timeout-sec", "0", "--quiet" })
            psi.ArgumentList.Add(a);
        using var p = System.Diagnostics.Process.Start(psi)!;
        var stderr = p.StandardError.ReadToEndAsync();
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while ((server.Count < 6 || server.Spans.Count < 3) && DateTime.UtcNow < deadline) await Task.Delay(50);
        Assert.True(server.Count >= 6, "the benchmark never got going");
        await Task.Delay(500);   // time for the client to read the three quick replies to their end
        using (var kill = System.Diagnostics.Process.Start("kill", ["-TERM", p.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)])) kill.WaitForExit();
        Assert.True(p.WaitForExit(60_000), "rlms bench did not stop after SIGTERM");
        Assert.Equal(130, p.ExitCode);
        var rows = await RLMServing.IO.Results.ResultWriter.ReadRequestsAsync(Path.Combine(dir, "requests.parquet"));
        Assert.InRange(rows.Count, 6, 199);
        int completed = rows.Count(r => r.Status == RLMServing.Metrics.RequestStatus.Completed);
        Assert.InRange(completed, 1, 3);   // only the quick replies can have finished
        var summary = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "summary.json")))!;
        Assert.True((bool)summary["interrupted"]!);
        Assert.Equal(200 - rows.Count, (int)summary["not_sent"]!);
        Assert.Equal(rows.Count - completed, (int)summary["cancelled"]!);   // the rest were in flight: rows, not lost
        Assert.Contains("interrupted", await stderr);
    }

    [Theory]
    [InlineData("--request-rate", "fast", "--request-rate")]
    [InlineData("--goodput", "latency:5", "--goodput")]
    [InlineData("--backend", "grpc", "--backend")]
    [InlineData("--dataset-name", "sharegpt", "--dataset-path")]
    [InlineData("--extra-body", "[1,2]", "--extra-body")]
    [InlineData("--ramp-up-strategy", "linear", "--ramp-up-strategy")]
    [InlineData("--token-budgets", "256,lots", "--token-budgets")]
    [InlineData("--scrape-metrics", "often", "--scrape-metrics")]
    [InlineData("--percentile-metrics", "ttft,latency", "--percentile-metrics")]
    [InlineData("--burstiness", "0", "--burstiness")]
    [InlineData("--preset-lengths", "long", "--preset-lengths")]
    public void BadFlagsAreOneLineAndExitTwo(string flag, string value, string named)
    {
        var dir = Path.Combine(RlmsProcess.TempDir(), "out");
        var r = RlmsProcess.Run("bench", "--model", "m", "--port", "9", "--result-dir", dir, flag, value);
        Assert.Equal(2, r.ExitCode);
        var lines = r.Stderr.Trim().Split('\n');
        Assert.Single(lines);
        Assert.StartsWith("error: ", lines[0]);
        Assert.Contains(named, lines[0]);
        Assert.False(Directory.Exists(dir), "nothing may be written on bad input");
    }

    [Fact]
    public void AServerThatNeverAnswersFailsTheReadyCheckInOneLine()
    {
        // Port 9 (discard) on loopback has no listener: every test request is refused.
        var dir = Path.Combine(RlmsProcess.TempDir(), "out");
        var r = RlmsProcess.Run("bench", "--model", "m", "--port", "9", "--result-dir", dir, "--ready-check-timeout-sec", "1", "--quiet");
        Assert.Equal(2, r.ExitCode);
        var line = Assert.Single(r.Stderr.Trim().Split('\n'));
        Assert.Contains("--ready-check-timeout-sec", line);
        Assert.False(Directory.Exists(dir));
    }
}
