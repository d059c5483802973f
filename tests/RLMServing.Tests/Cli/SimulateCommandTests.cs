using System.Text.Json;
using RLMServing.IO.Results;
using Xunit;

namespace RLMServing.Tests.Cli;

public class SimulateCommandTests
{
    private static string Quickstart => Path.Combine(RlmsProcess.RepoRoot(), "scenarios", "quickstart.yaml");

    [Fact]
    public void QuickstartWritesOneFolderPerVariantAndAComparison()
    {
        var dir = RlmsProcess.TempDir();
        var o = RlmsProcess.Run("simulate", Quickstart, "--out", dir, "--set", "workload.requests=200");
        Assert.True(o.ExitCode == 0, o.Stderr);
        foreach (var v in new[] { "reasoning", "standard" })
        {
            Assert.True(File.Exists(Path.Combine(dir, v, "summary.json")));
            Assert.True(File.Exists(Path.Combine(dir, v, "requests.parquet")));
            Assert.True(File.Exists(Path.Combine(dir, v, "timeseries.parquet")));
        }
        using var comparison = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "comparison.json")));
        Assert.Equal(["reasoning", "standard"], comparison.RootElement.GetProperty("variants").EnumerateArray().Select(e => e.GetString()));
        Assert.Contains("reasoning", o.Stdout);
        Assert.Contains("standard", o.Stdout);
        Assert.Empty(Directory.GetFiles(dir, "*.tmp", SearchOption.AllDirectories));
    }

    [Fact]
    public void SummaryUsesVllmKeyNames()
    {
        var dir = RlmsProcess.TempDir();
        var o = RlmsProcess.Run("simulate", Quickstart, "--out", dir, "--set", "workload.requests=100", "--quiet");
        Assert.True(o.ExitCode == 0, o.Stderr);
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "reasoning", "summary.json")));
        var keys = doc.RootElement.EnumerateObject().Select(p => p.Name).ToHashSet();
        string[] vllm = ["completed", "failed", "duration", "total_input_tokens", "total_output_tokens", "request_throughput",
            "output_throughput", "total_token_throughput", "request_goodput"];
        string[] ours = ["mean_ttfat_ms", "p99_ttfat_ms", "preemptions", "peak_kv_cache_usage", "mean_kv_cache_usage", "gpu_busy_fraction"];
        foreach (var k in vllm.Concat(ours)) Assert.Contains(k, keys);
        foreach (var m in new[] { "ttft_ms", "tpot_ms", "itl_ms", "e2el_ms" })
            foreach (var p in new[] { "mean_", "median_", "std_", "p90_", "p99_" })
                Assert.Contains(p + m, keys);
        Assert.Equal(100, doc.RootElement.GetProperty("completed").GetInt32());
    }

    [Fact]
    public void SameSeedGivesByteIdenticalFiles()
    {
        // Same command line twice (the command is recorded in the Parquet metadata), the first result moved aside.
        var a = RlmsProcess.TempDir();
        var b = a + "-first";
        Assert.Equal(0, RlmsProcess.Run("simulate", Quickstart, "--out", a, "--set", "workload.requests=150", "--quiet").ExitCode);
        Directory.Move(a, b);
        Assert.Equal(0, RlmsProcess.Run("simulate", Quickstart, "--out", a, "--set", "workload.requests=150", "--quiet").ExitCode);
        foreach (var f in new[] { "summary.json", "requests.parquet", "timeseries.parquet" })
            Assert.Equal(File.ReadAllBytes(Path.Combine(a, "standard", f)), File.ReadAllBytes(Path.Combine(b, "standard", f)));
        Assert.Equal(File.ReadAllBytes(Path.Combine(a, "comparison.json")), File.ReadAllBytes(Path.Combine(b, "comparison.json")));
    }

    [Fact]
    public async Task RequestsParquetRoundTrips()
    {
        var dir = RlmsProcess.TempDir();
        Assert.Equal(0, RlmsProcess.Run("simulate", Quickstart, "--out", dir, "--set", "workload.requests=120", "--quiet").ExitCode);
        var rows = await ResultWriter.ReadRequestsAsync(Path.Combine(dir, "reasoning", "requests.parquet"));
        Assert.Equal(120, rows.Count);
        Assert.All(rows, r => Assert.True(r.ThinkingTokens <= r.OutputTokens));
        Assert.Contains(rows, r => r.ThinkingTokens > 0);
    }

    [Fact]
    public void SetCanBeRepeated()
    {
        var dir = RlmsProcess.TempDir();
        var o = RlmsProcess.Run("simulate", Quickstart, "--out", dir, "--set", "workload.requests=40", "--set", "workload.arrival.rate=2", "--quiet");
        Assert.True(o.ExitCode == 0, o.Stderr);
        using var doc = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "standard", "summary.json")));
        Assert.Equal(40, doc.RootElement.GetProperty("completed").GetInt32());
    }

    [Fact]
    public void SeedOptionChangesTheWorkload()
    {
        var a = RlmsProcess.TempDir();
        var b = RlmsProcess.TempDir();
        Assert.Equal(0, RlmsProcess.Run("simulate", Quickstart, "--out", a, "--set", "workload.requests=50", "--quiet").ExitCode);
        Assert.Equal(0, RlmsProcess.Run("simulate", Quickstart, "--out", b, "--set", "workload.requests=50", "--seed", "7", "--quiet").ExitCode);
        Assert.NotEqual(File.ReadAllBytes(Path.Combine(a, "reasoning", "requests.parquet")), File.ReadAllBytes(Path.Combine(b, "reasoning", "requests.parquet")));
    }
}
