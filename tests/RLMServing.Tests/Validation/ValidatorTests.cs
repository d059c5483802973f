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
    public void RepeatsArePooledAndTheirRangeReported()
    {
        // Two repeats of one scenario: TTFT means 150 and 170 ms, pooled 160; the prediction is 10% above the pool.
        var a = new[] { Request(0, 100, 1100), Request(1, 200, 1200) };
        var b = new[] { Request(0, 120, 1100), Request(1, 220, 1200) };
        var predicted = new[] { Request(0, 121, 1100), Request(1, 231, 1200) };
        var r = Validator.Compare([a, b], [predicted], 0.15);
        Assert.Equal(176.0 / 160 - 1, r.Ttft!.MeanError, 12);
        Assert.Equal(160, r.Ttft.MeasuredMeanMs, 12);
        Assert.Equal(2, r.Ttft.MeasuredRuns);
        Assert.Equal(2, r.Ttft.RunMeanErrors.Count);
        Assert.Equal(176.0 / 150 - 1, r.Ttft.RunMeanErrors[0], 12);
        Assert.Equal(176.0 / 170 - 1, r.Ttft.RunMeanErrors[1], 12);
        Assert.Equal(20.0 / 160, r.Ttft.MeasuredRepeatRange!.Value, 12);
        // MAPE compares each request's mean over the repeats (110, 210) with its prediction (121, 231): 10% each.
        Assert.Equal(0.10, r.Ttft.Mape!.Value, 12);
        Assert.Equal(2, r.Ttft.RequestsMatched);
        Assert.Equal(4, r.Ttft.RequestsMeasured);
        // The end-to-end latency is the same in both repeats: no range.
        Assert.Equal(0, r.E2el!.MeasuredRepeatRange!.Value, 12);

        // One run: no range, and the same report as the single-run overload.
        var one = Validator.Compare([a], [predicted], 0.15);
        Assert.Null(one.Ttft!.MeasuredRepeatRange);
        Assert.Equal(1, one.Ttft.MeasuredRuns);
        Assert.Equal(Validator.Compare(a, predicted, 0.15).Ttft!.MeanError, one.Ttft.MeanError, 15);
    }

    [Fact]
    public void PairsArePooledOnBothSidesAndMatchedWithinEachPair()
    {
        // Two seeds: run 1 (TTFT 100, 200) predicted (110, 220); run 2 (1000, 3000) predicted (800, 3000).
        var m1 = new[] { Request(0, 100, 1000), Request(1, 200, 1000) };
        var p1 = new[] { Request(0, 110, 1000), Request(1, 220, 1000) };
        var m2 = new[] { Request(0, 1000, 5000), Request(1, 3000, 5000) };
        var p2 = new[] { Request(0, 800, 5000), Request(1, 3000, 5000) };
        var r = Validator.Compare([m1, m2], [p1, p2], 0.1);
        // Pooled means: measured 4300 / 4, predicted 4130 / 4.
        Assert.Equal(4130.0 / 4300 - 1, r.Ttft!.MeanError, 12);
        Assert.Equal(2, r.Ttft.RunMeanErrors.Count);
        Assert.Equal(0.10, r.Ttft.RunMeanErrors[0], 12);
        Assert.Equal(3800.0 / 4000 - 1, r.Ttft.RunMeanErrors[1], 12);
        Assert.Null(r.Ttft.MeasuredRepeatRange);
        // MAPE within pairs: 10%, 10%, 20%, 0%.
        Assert.Equal(0.10, r.Ttft.Mape!.Value, 12);
        Assert.Equal(4, r.Ttft.RequestsMatched);
        Assert.Throws<ArgumentException>(() => Validator.Compare([m1, m2, m1], [p1, p2], 0.1));
    }

    [Fact]
    public void RepeatsMustServeTheSameRequests()
    {
        var a = new[] { Request(0, 100, 1000), Request(1, 100, 1000) };
        Assert.Null(Validator.FirstIdMismatch([a, a.Reverse().ToArray()]));
        Assert.Equal((1, 1L, true), Validator.FirstIdMismatch([a, new[] { Request(0, 100, 1000) }]));
        Assert.Equal((2, 7L, false), Validator.FirstIdMismatch([a, a, new[] { Request(0, 1, 2), Request(1, 1, 2), Request(7, 1, 2) }]));
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

        // Repeats of one run: pooled, no range; JSON says how many.
        var repeated = RlmsProcess.Run("validate", "--measured", a, a, "--predicted", a, "--json");
        Assert.True(repeated.ExitCode == 0, repeated.Stderr);
        using (var doc = JsonDocument.Parse(repeated.Stdout))
        {
            Assert.Equal(2, doc.RootElement.GetProperty("ttft").GetProperty("measured_runs").GetInt32());
            Assert.Equal(2, doc.RootElement.GetProperty("ttft").GetProperty("run_mean_errors").GetArrayLength());
            Assert.Equal(0, doc.RootElement.GetProperty("tpot").GetProperty("measured_repeat_range").GetDouble());
            Assert.Equal(0, doc.RootElement.GetProperty("itl").GetProperty("measured_repeat_range").GetDouble());
        }
        // "Repeats" of different workloads are refused with one line naming the file.
        var dir2 = RlmsProcess.TempDir();
        Assert.Equal(0, RlmsProcess.Run("simulate", quickstart, "--out", dir2, "--set", "workload.requests=140", "--quiet").ExitCode);
        var c = Path.Combine(dir2, "reasoning", "requests.parquet");
        var mismatch = RlmsProcess.Run("validate", "--measured", a, c, "--predicted", a);
        Assert.Equal(2, mismatch.ExitCode);
        Assert.Contains(c, mismatch.Stderr);
        Assert.Contains("same scenario", mismatch.Stderr);
        // Pairs: run i against prediction i; the second pair is the 140-request run against itself.
        var pairs = RlmsProcess.Run("validate", "--measured", a, c, "--predicted", a, c, "--json");
        Assert.True(pairs.ExitCode == 0, pairs.Stderr);
        using (var doc = JsonDocument.Parse(pairs.Stdout))
            Assert.Equal(JsonValueKind.Null, doc.RootElement.GetProperty("e2el").GetProperty("measured_repeat_range").ValueKind);
        var crossed = RlmsProcess.Run("validate", "--measured", a, c, "--predicted", c, a);
        Assert.Equal(2, crossed.ExitCode);
        Assert.Contains("i-th --predicted", crossed.Stderr);
        var count = RlmsProcess.Run("validate", "--measured", a, c, a, "--predicted", a, c);
        Assert.Equal(2, count.ExitCode);
        Assert.Contains("--predicted: 2 files for 3", count.Stderr);

        var missing = RlmsProcess.Run("validate", "--measured", a, "--predicted", "/nonexistent/requests.parquet");
        Assert.Equal(2, missing.ExitCode);
        Assert.Contains("/nonexistent/requests.parquet", missing.Stderr);
    }
}
