using System.Text.Json;
using RLMServing.IO.Results;
using RLMServing.Metrics;
using RLMServing.Tests.Cli;
using RLMServing.Validation;
using Xunit;

namespace RLMServing.Tests.Validation;

public class ValidatorTests
{
    /// <summary>A completed request with the given TTFT, output and end-to-end latency (ms).</summary>
    private static RequestRecord Request(long id, double ttftMs, double e2elMs, int output = 11) =>
        new(id, 0, 100, output, 0, RequestStatus.Completed, 0, ttftMs / 1000, ttftMs / 1000, e2elMs / 1000, 0, 0, null, false);

    [Fact]
    public void ErrorsAreRelativeAndSigned()
    {
        var measured = new[] { Request(0, 100, 1100), Request(1, 200, 1200), Request(2, 300, 1300) };
        var predicted = new[] { Request(0, 110, 1045), Request(1, 220, 1140), Request(2, 330, 1235) };
        var r = Validator.Compare(measured, predicted, 0.15);
        Assert.Equal(0.10, r.Ttft!.MeanError, 12);
        Assert.Equal(0.10, r.Ttft.P50Error, 12);
        Assert.Equal(0.10, r.Ttft.P99Error, 12);
        Assert.Equal(0.10, r.Ttft.Mape!.Value, 12);
        Assert.Equal(-0.05, r.E2el!.MeanError, 12);
        // TPOT = (e2el - ttft) / (output - 1): measured 100 ms each; predicted 93.5, 92, 90.5 -> mean 92 ms, -8%.
        Assert.Equal(-0.08, r.Tpot!.MeanError, 12);
        Assert.Equal(3, r.Ttft.RequestsMatched);
        Assert.Equal("pass", r.Verdict);
        Assert.Equal("fail", Validator.Compare(measured, predicted, 0.05).Verdict);
    }

    [Fact]
    public void MapeMatchesRequestsByIdNotByPosition()
    {
        var measured = new[] { Request(0, 100, 1000), Request(1, 300, 1000) };
        var predicted = new[] { Request(1, 300, 1000), Request(0, 100, 1000) };   // same values, other order
        var r = Validator.Compare(measured, predicted, 0.1);
        Assert.Equal(0, r.Ttft!.Mape!.Value, 12);
        // Over/under-predictions that cancel in the mean still show in MAPE.
        var swapped = new[] { Request(0, 300, 1000), Request(1, 100, 1000) };
        var s = Validator.Compare(measured, swapped, 0.1);
        Assert.Equal(0, s.Ttft!.MeanError, 12);
        Assert.Equal((2.0 + 2.0 / 3) / 2, s.Ttft.Mape!.Value, 12);
    }

    [Fact]
    public void RejectedRequestsAreLeftOut()
    {
        var rejected = new RequestRecord(9, 0, 100, 0, 0, RequestStatus.Rejected, null, null, null, null, 0, 0, "prompt_exceeds_kv_cache", false);
        var r = Validator.Compare([Request(0, 100, 1000), rejected], [Request(0, 100, 1000)], 0.1);
        Assert.Equal(1, r.Ttft!.RequestsMeasured);
        Assert.Equal(0, r.Ttft.MeanError);
    }

    [Fact]
    public void ValidateCliComparesTwoSimulatedRuns()
    {
        var quickstart = Path.Combine(RlmsProcess.RepoRoot(), "scenarios", "quickstart.yaml");
        var dir = RlmsProcess.TempDir();
        Assert.Equal(0, RlmsProcess.Run("simulate", quickstart, "--out", dir, "--set", "workload.requests=150", "--quiet").ExitCode);
        var a = Path.Combine(dir, "reasoning", "requests.parquet");
        var b = Path.Combine(dir, "standard", "requests.parquet");

        var same = RlmsProcess.Run("validate", "--measured", a, "--predicted", a, "--json");
        Assert.True(same.ExitCode == 0, same.Stderr);
        using (var doc = JsonDocument.Parse(same.Stdout))
        {
            foreach (var metric in new[] { "ttft", "tpot", "e2el", "itl" })
                foreach (var key in new[] { "mean_error", "p50_error", "p90_error", "p99_error" })
                    Assert.Equal(0, doc.RootElement.GetProperty(metric).GetProperty(key).GetDouble());
            Assert.Equal("pass", doc.RootElement.GetProperty("verdict").GetString());
        }

        // The standard model's run is far from the reasoning model's: outside a 10% tolerance, exit code 1.
        var different = RlmsProcess.Run("validate", "--measured", a, "--predicted", b);
        Assert.Equal(1, different.ExitCode);
        Assert.Contains("FAIL", different.Stdout);

        var missing = RlmsProcess.Run("validate", "--measured", a, "--predicted", "/nonexistent/requests.parquet");
        Assert.Equal(2, missing.ExitCode);
        Assert.Contains("/nonexistent/requests.parquet", missing.Stderr);
    }
}
