using System.Text.Json;
using RLMServing.IO.Sweeps;
using Xunit;

namespace RLMServing.Tests.Cli;

/// <summary>
/// metrics.percentiles and --metric-percentiles decide the pNN_*_ms keys of summary.json, results.parquet and the
/// report; slo and capacity.slo take any of them as limits.
/// </summary>
public class PercentileKeysTests
{
    private static string Scenario => Path.Combine(RlmsProcess.RepoRoot(), "scenarios", "capacity-r1-32b.yaml");

    private static HashSet<string> Keys(string summaryPath)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(summaryPath));
        return doc.RootElement.EnumerateObject().Select(p => p.Name).ToHashSet();
    }

    [Fact]
    public void TheFlagDecidesTheSummaryKeysAndTheFixedOnesStay()
    {
        var dir = RlmsProcess.TempDir();
        var o = RlmsProcess.Run("simulate", Scenario, "--out", dir, "--set", "workload.requests=200", "--metric-percentiles", "50,90,95,99.9", "--quiet");
        Assert.True(o.ExitCode == 0, o.Stderr);
        var keys = Keys(Path.Combine(dir, "summary.json"));
        foreach (var m in new[] { "ttft", "tpot", "itl", "e2el", "ttfat" })
        {
            Assert.Contains($"p50_{m}_ms", keys);
            Assert.Contains($"p95_{m}_ms", keys);
            Assert.Contains($"p99.9_{m}_ms", keys);
        }
        Assert.Contains("p99_ttft_ms", keys);     // vLLM's keys are always written
        Assert.Contains("median_ttft_ms", keys);
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "summary.json")));
        var root = doc.RootElement;
        // Percentiles are ordered as the numbers are.
        Assert.True(root.GetProperty("p50_ttft_ms").GetDouble() <= root.GetProperty("p95_ttft_ms").GetDouble());
        Assert.True(root.GetProperty("p95_ttft_ms").GetDouble() <= root.GetProperty("p99_ttft_ms").GetDouble());
        Assert.True(root.GetProperty("p99_ttft_ms").GetDouble() <= root.GetProperty("p99.9_ttft_ms").GetDouble());
        var steady = root.GetProperty("steady_state");
        Assert.True(steady.TryGetProperty("p99.9_e2el_ms", out _));
        Assert.True(steady.TryGetProperty("warmup_s", out _));
        Assert.True(steady.TryGetProperty("drain_s", out _));
    }

    [Fact]
    public void WithoutAListP95IsIncluded()
    {
        var dir = RlmsProcess.TempDir();
        var o = RlmsProcess.Run("simulate", Scenario, "--out", dir, "--set", "workload.requests=100", "--quiet");
        Assert.True(o.ExitCode == 0, o.Stderr);
        var keys = Keys(Path.Combine(dir, "summary.json"));
        Assert.Contains("p95_ttft_ms", keys);
        Assert.DoesNotContain("p50_ttft_ms", keys);
    }

    [Fact]
    public void AScenarioListReachesTheReport()
    {
        var dir = RlmsProcess.TempDir();
        var o = RlmsProcess.Run("simulate", Scenario, "--out", dir, "--set", "workload.requests=100", "--set", "metrics.percentiles=[50, 99.9]", "--quiet", "--report");
        Assert.True(o.ExitCode == 0, o.Stderr);
        Assert.Contains("p99.9_tpot_ms", Keys(Path.Combine(dir, "summary.json")));
        var html = File.ReadAllText(Path.Combine(dir, "report.html"));
        Assert.Contains("TTFT p50 / p99.9 (s)", html);
    }

    [Fact]
    public void APercentileLimitInTheScenarioSloIsJudgedOverTheSteadyWindow()
    {
        var dir = RlmsProcess.TempDir();
        var met = RlmsProcess.Run("simulate", Scenario, "--out", Path.Combine(dir, "met"), "--set", "workload.requests=200", "--set", "slo.p95_ttft_ms=100000", "--quiet");
        var missed = RlmsProcess.Run("simulate", Scenario, "--out", Path.Combine(dir, "missed"), "--set", "workload.requests=200", "--set", "slo.p95_ttft_ms=0.001", "--quiet");
        Assert.True(met.ExitCode == 0 && missed.ExitCode == 0, met.Stderr + missed.Stderr);
        using var a = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "met", "summary.json")));
        using var b = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "missed", "summary.json")));
        Assert.True(a.RootElement.GetProperty("slo_met").GetBoolean());
        Assert.False(b.RootElement.GetProperty("slo_met").GetBoolean());
    }

    [Theory]
    [InlineData("--metric-percentiles", "50,100", "--metric-percentiles 50,100: percentiles are between 0 and 100")]
    [InlineData("--set", "metrics.percentiles=[50, x]", "metrics.percentiles: expected numbers, got 'x'")]
    [InlineData("--set", "slo.p100_ttft_ms=3", "slo.p100_ttft_ms: unknown key")]
    public void BadPercentilesAreOneLineAndExitCode2(string option, string value, string expected)
    {
        var dir = RlmsProcess.TempDir();
        var o = RlmsProcess.Run("simulate", Scenario, "--out", Path.Combine(dir, "out"), option, value);
        Assert.Equal(2, o.ExitCode);
        Assert.Contains(expected, o.Stderr);
        Assert.Single(o.Stderr.Trim().Split('\n'));
        Assert.False(Directory.Exists(Path.Combine(dir, "out")));
    }

    [Fact]
    public async Task ASweepCarriesTheListAndTheCapacitySloTakesAnyPercentile()
    {
        var dir = RlmsProcess.TempDir();
        var sweep = Path.Combine(dir, "p.yaml");
        File.WriteAllText(sweep, $$"""
            base: {{Scenario}}
            set: { workload.requests: 200, model: DeepSeek-R1-Distill-Qwen-7B, workload.output_tokens: { dist: lognormal, median: 300, sigma: 0.5 } }
            axes: { hardware.gpu: [H100-SXM-80G] }
            capacity: { start_rate: 4, tolerance: 0.2, slo: { p99.9_ttft_ms: 5000, p95_tpot_ms: 60 }, convergence: false }
            """);
        var o = RlmsProcess.Run("sweep", sweep, "--out", Path.Combine(dir, "out"), "--metric-percentiles", "50,99", "--quiet");
        Assert.True(o.ExitCode == 0, o.Stderr);
        var (t, _) = await ResultsTable.ReadAsync(Path.Combine(dir, "out", "results.parquet"));
        // The flag's 50, and the SLO's 95 and 99.9 (computed because a limit names them); no default p95 besides.
        foreach (var c in new[] { "p50_ttft_ms", "p95_tpot_ms", "p99.9_ttft_ms", "steady_state.p99.9_ttft_ms", "steady_state.p99_ttft_ms", "p99_ttft_ms" })
            Assert.True(t.IndexOf(c) >= 0, c);
        var row = t.Rows.Single();
        Assert.True((double)row[t.IndexOf("capacity.max_rate")]! > 0);
        Assert.True((double)row[t.IndexOf("steady_state.p99.9_ttft_ms")]! <= 5000);
        Assert.True((double)row[t.IndexOf("steady_state.p95_tpot_ms")]! <= 60);
        Assert.Equal(false, row[t.IndexOf("capacity.converged")]);   // convergence: false is not a converged answer

        File.WriteAllText(sweep, File.ReadAllText(sweep).Replace("p99.9_ttft_ms", "p100_ttft_ms"));
        var bad = RlmsProcess.Run("sweep", sweep, "--out", Path.Combine(dir, "bad"), "--quiet");
        Assert.Equal(2, bad.ExitCode);
        Assert.Contains("capacity.slo.p100_ttft_ms", bad.Stderr);
    }
}
