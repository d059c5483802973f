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
