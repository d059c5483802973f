using System.Diagnostics;
using MathNet.Numerics.Statistics;
using RLMServing.Bench;
using Xunit;
using static RLMServing.Tests.Bench.FakeOpenAiServer;
using static RLMServing.Tests.Bench.StreamTimingTests;

namespace RLMServing.Tests.Bench;

/// <summary>The send schedule is computed up front (vLLM's rules), and the client records when it actually sent.</summary>
public class ScheduleTests
{
    private static double[] Gaps(double[] offsets) => offsets.Select((t, i) => i == 0 ? t : t - offsets[i - 1]).ToArray();

    [Fact]
    public void PoissonScheduleEndsAtNOverRateAndHasExponentialGaps()
    {
        var o = new BenchOptions { Model = "m", RequestRate = 10 };
        var offsets = ArrivalSchedule.Compute(5000, o, new Random(1));
        Assert.Equal(500.0, offsets[^1], 9);
        var gaps = Gaps(offsets);
        Assert.All(gaps, g => Assert.True(g >= 0));
        Assert.InRange(gaps.Mean(), 0.099, 0.101);
        Assert.InRange(gaps.StandardDeviation() / gaps.Mean(), 0.95, 1.05);
    }

    [Theory]
    [InlineData(0.25)]
    [InlineData(4.0)]
    public void BurstinessIsTheGammaShape(double burstiness)
    {
        var gaps = Gaps(ArrivalSchedule.Compute(20000, new BenchOptions { Model = "m", RequestRate = 5, Burstiness = burstiness }, new Random(2)));
        double cv = gaps.StandardDeviation() / gaps.Mean();
        Assert.InRange(cv, 0.93 / Math.Sqrt(burstiness), 1.07 / Math.Sqrt(burstiness));
    }

    [Fact]
    public void InfiniteRateSendsEverythingAtOnce() =>
        Assert.All(ArrivalSchedule.Compute(100, new BenchOptions { Model = "m" }, new Random(3)), t => Assert.Equal(0, t));

    [Fact]
    public void RampsMoveTheRateFromStartToEnd()
    {
        var linear = new BenchOptions { Model = "m", RampUpStrategy = "linear", RampUpStartRps = 1, RampUpEndRps = 11 };
        Assert.Equal([1.0, 6.0, 11.0], new[] { 0, 5, 10 }.Select(i => ArrivalSchedule.RateAt(i, 11, linear)));
        var exp = linear with { RampUpStrategy = "exponential", RampUpStartRps = 1, RampUpEndRps = 100 };
        Assert.Equal(10.0, ArrivalSchedule.RateAt(5, 11, exp), 9);
        // Early gaps of a ramp are longer than late ones.
        var gaps = Gaps(ArrivalSchedule.Compute(2000, linear, new Random(4)));
        Assert.True(gaps.Take(200).Mean() > 3 * gaps.TakeLast(200).Mean());
    }

    [Fact]
    public void TheScheduleIsReproducibleFromTheSeed()
    {
        var o = new BenchOptions { Model = "m", RequestRate = 3, Burstiness = 0.5 };
        Assert.Equal(ArrivalSchedule.Compute(50, o, new Random(7)), ArrivalSchedule.Compute(50, o, new Random(7)));
        Assert.NotEqual(ArrivalSchedule.Compute(50, o, new Random(7)), ArrivalSchedule.Compute(50, o, new Random(8)));
    }

    [Fact]
    public async Task RequestsAreSentAtTheirScheduledTimes()
    {
        await using var server = await StartAsync((_, _) => Chat(1, 1));
        var options = Options(server, prompts: 20) with { RequestRate = 40, Burstiness = 1, Seed = 5 };
        var run = await RunAsync(options);
        var expected = ArrivalSchedule.Compute(20, options, new Random(5));
        Assert.Equal(expected, run.Outcomes.Select(o => o.ScheduledS));
        Assert.All(run.Outcomes, o => Assert.True(o.SendS >= o.ScheduledS - 1e-3, $"sent at {o.SendS} before its deadline {o.ScheduledS}"));
        double lag = run.Outcomes.Average(o => o.SendS - o.ScheduledS);
        Assert.True(lag < 0.25, $"a lightly loaded client sends close to the schedule; mean lag {lag * 1000:F1} ms");
    }

    [Fact]
    public async Task ALimitedClientRecordsItsLagInsteadOfMovingTheSchedule()
    {
        // One slot and 200 ms per request, at 50 req/s: sends fall behind; the schedule does not.
        await using var server = await StartAsync((_, _) => new FakeReply([new(200, Content("a", "stop")), new(0, Done)]));
        var options = Options(server, prompts: 5) with { RequestRate = 50, MaxConcurrency = 1, Seed = 1 };
        var run = await RunAsync(options);
        Assert.Equal(ArrivalSchedule.Compute(5, options, new Random(1)), run.Outcomes.Select(o => o.ScheduledS));
        Assert.True(run.Outcomes[^1].SendS - run.Outcomes[^1].ScheduledS > 0.5, "the last send lags by about four service times");
        Assert.Equal(1, server.PeakInFlight);
        var summary = BenchSummary.Build(run, options);
        Assert.True(summary.Json["max_send_lag_ms"]!.GetValue<double>() > 500);
    }

    [Fact]
    public async Task ClosedBatchesWaitForTheWholeBatch()
    {
        await using var server = await StartAsync((i, _) => new FakeReply([new(i % 3 == 0 ? 150 : 20, Content("a", "stop")), new(0, Done)]));
        var options = Options(server, prompts: 7) with { ClosedBatches = 3 };
        var run = await RunAsync(options);
        Assert.Equal(7, run.Outcomes.Count);
        Assert.Equal(3, server.PeakInFlight);
        for (int b = 1; b * 3 < 7; b++)
        {
            var previous = run.Outcomes.Skip((b - 1) * 3).Take(3);
            double batchStart = run.Outcomes[b * 3].ScheduledS;
            Assert.True(batchStart >= previous.Max(o => o.EndS!.Value), $"batch {b} began before batch {b - 1} finished");
            Assert.All(run.Outcomes.Skip(b * 3).Take(3), o => Assert.Equal(batchStart, o.ScheduledS));
        }
    }

    [Fact]
    public async Task TraceDatasetsReplayTheirArrivalTimes()
    {
        var dir = Cli.RlmsProcess.TempDir();
        var trace = Path.Combine(dir, "trace.csv");
        File.WriteAllText(trace, "arrival_time_s,prompt_tokens,output_tokens\n10.0,5,3\n10.2,6,2\n10.5,4,4\n");
        await using var server = await StartAsync((_, _) => Chat(1, 1));
        var options = Options(server, prompts: 3) with { DatasetName = "trace", DatasetPath = trace };
        var sw = Stopwatch.StartNew();
        var run = await RunAsync(options);
        Assert.Equal([0.0, 0.2, 0.5], run.Outcomes.Select(o => Math.Round(o.ScheduledS, 6)));
        Assert.Equal([3, 2, 4], server.Bodies.Select(b => (int)b["max_completion_tokens"]!));
        Assert.True(sw.Elapsed.TotalSeconds >= 0.5);
    }
}
