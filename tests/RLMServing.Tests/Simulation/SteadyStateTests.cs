using FsCheck.Xunit;
using RLMServing.Metrics;
using Xunit;

namespace RLMServing.Tests.Simulation;

/// <summary>The Mann-Kendall trend test on synthetic series, and the steady window and stability verdict on synthetic runs.</summary>
public class SteadyStateTests
{
    [Fact]
    public void MannKendallMatchesTheTextbookStatisticForAStrictlyRisingSeries()
    {
        // 10 rising points: S = 45, Var(S) = 10·9·25/18 = 125, z = (45 − 1)/√125 = 3.9355, one-sided p = 4.15e-5.
        var r = TrendTest.MannKendall(Enumerable.Range(1, 10).Select(i => (double)i).ToArray());
        Assert.Equal(45, r.S);
        Assert.Equal(44 / Math.Sqrt(125), r.Z, 9);
        Assert.InRange(r.PIncreasing, 4.1e-5, 4.2e-5);
        Assert.Equal(1, r.SenSlope, 12);
    }

    [Fact]
    public void MannKendallSeesAFallingSeriesAsNoIncrease()
    {
        var r = TrendTest.MannKendall(Enumerable.Range(1, 30).Select(i => 100.0 - i).ToArray());
        Assert.True(r.PIncreasing > 0.999);
        Assert.Equal(-1, r.SenSlope, 12);
    }

    [Fact]
    public void MannKendallCorrectsTheVarianceForTies()
    {
        // Ties lower Var(S): 0,0,0,1,1,1 has S = 9 and Var = 6·5·17/18 − 2·(3·2·11/18) = 28.33 − 7.33 = 21.
        var r = TrendTest.MannKendall([0, 0, 0, 1, 1, 1]);
        Assert.Equal(9, r.S);
        Assert.Equal(8 / Math.Sqrt(21), r.Z, 9);
    }

    /// <summary>
    /// The per-window time averages come from interval overlaps (no sort); they must equal the event-sweep reference
    /// (sort the +1/-1 steps, integrate the level window by window) for intervals that start or end outside the
    /// span, on window boundaries, or span no time at all.
    /// </summary>
    [Property(MaxTest = 200)]
    public void WindowAveragesEqualAnEventSweep(int seed)
    {
        var rng = new Random(seed);
        int windows = 1 + rng.Next(40);
        double t0 = rng.NextDouble() * 10, width = 0.1 + rng.NextDouble() * 5, end = t0 + width * windows;
        double Time() => rng.Next(6) switch
        {
            0 => t0 + rng.Next(windows + 1) * width,          // a boundary
            1 => t0 - rng.NextDouble() * width,               // before the span
            2 => end + rng.NextDouble() * width,              // after it
            _ => t0 + rng.NextDouble() * (end - t0),
        };
        var intervals = Enumerable.Range(0, rng.Next(200)).Select(_ => { double a = Time(); return (a, b: Math.Max(a, rng.Next(8) == 0 ? a : Time())); }).ToList();

        var fast = new SteadyState.WindowAverage(t0, width, windows);
        foreach (var (a, b) in intervals) fast.Add(a, b);
        var actual = fast.Averages();

        var events = intervals.SelectMany(x => new[] { (T: x.a, D: 1), (T: x.b, D: -1) }).OrderBy(e => e.T).ToList();
        var area = new double[windows];
        double prev = t0;
        int level = 0;
        foreach (var (t, d) in events.Append((T: end, D: 0)))
        {
            double at = Math.Clamp(t, t0, end);
            for (int k = 0; k < windows && level > 0; k++)
            {
                double lo = Math.Max(prev, t0 + k * width), hi = Math.Min(at, t0 + (k + 1) * width);
                if (hi > lo) area[k] += level * (hi - lo);
            }
            prev = Math.Max(prev, at);
            level += d;
        }
        for (int k = 0; k < windows; k++)
            Assert.True(Math.Abs(area[k] / width - actual[k]) <= 1e-9 * (1 + intervals.Count), $"window {k}: {area[k] / width} vs {actual[k]}");
    }

    [Property(MaxTest = 50)]
    public bool MannKendallFindsANoisyLinearTrend(int seed)
    {
        var rng = new Random(seed);
        var series = Enumerable.Range(0, 40).Select(i => 0.5 * i + rng.NextDouble() * 5).ToArray();
        var r = TrendTest.MannKendall(series);
        return r.PIncreasing < 0.001 && Math.Abs(r.SenSlope - 0.5) < 0.2;
    }

    [Fact]
    public void MannKendallOnStationaryNoiseRejectsAboutAlphaOfTheTime()
    {
        var rng = new Random(11);
        int rejected = 0, trials = 2000;
        for (int t = 0; t < trials; t++)
            if (TrendTest.MannKendall(Enumerable.Range(0, 30).Select(_ => rng.NextDouble()).ToArray()).PIncreasing < 0.05) rejected++;
        Assert.InRange(rejected / (double)trials, 0.03, 0.07);
    }

    [Fact]
    public void ABatchThatFillsUpIsStableAndItsWarmUpIsLeftOut()
    {
        // 2,000 arrivals at 1/s, each admitted at once and served for 200 s alongside the others (continuous
        // batching with room to spare): the system fills for 200 s, then holds about 200 requests.
        var rows = Enumerable.Range(0, 2000).Select(i => Row(i, i, i + 0.01, 200)).ToList();
        var w = SteadyState.Analyze(rows);
        Assert.False(w.Unstable, w.Reason);
        Assert.InRange(w.WarmupS, 190, 230);
        Assert.Equal(1999, w.EndS, 9);
        Assert.InRange(w.DrainS, 200, 201);
    }

    [Fact]
    public void AServerThatFallsBehindIsUnstableEvenWhenTheLastTenthOfArrivalsLooksLikeTheFirst()
    {
        // Arrivals at 1/s served in 1.25 s: the queue grows by one request every 5 s, steadily, all run long.
        var rows = SingleServer(800, interArrivalS: 1.0, serviceS: 1.25, startS: 0);
        var w = SteadyState.Analyze(rows);
        Assert.True(w.Unstable);
        Assert.Contains("queueing delay rose", w.Reason);
        Assert.True(w.DelayTrend!.PIncreasing < SteadyState.Alpha);
        // The old first-vs-last-10% rule, on the same run, would also fire; the trend test must not need the end:
        // cut to the middle 60% of arrivals, it still sees the trend.
        var middle = rows.Where(r => r.ArrivalTimeS >= 160 && r.ArrivalTimeS < 640).ToList();
        Assert.True(SteadyState.Analyze(middle).Unstable);
    }

    [Fact]
    public void ATrendTooSmallToMatterIsNotInstability()
    {
        // Queueing delay drifts up by 0.2 s over the run: significant, but under the 1 s floor.
        var rows = Enumerable.Range(0, 1000).Select(i => Row(i, i, i + 0.0002 * i, 0.5)).ToList();
        var w = SteadyState.Analyze(rows);
        Assert.True(w.DelayTrend!.PIncreasing < SteadyState.Alpha);
        Assert.False(w.Unstable);
    }

    [Fact]
    public void TooFewRequestsGiveNoVerdict()
    {
        var rows = SingleServer(SteadyState.MinRequests - 1, 1.0, 5.0, 0);
        var w = SteadyState.Analyze(rows);
        Assert.False(w.Unstable);
        Assert.Null(w.DelayTrend);
        Assert.Equal(0, w.WarmupS);
    }

    [Fact]
    public void WarmUpEndsWhereTheLoadReachesItsLaterLevel()
    {
        double[] ramp = [0, 2, 4, 6, 8, 10, 10, 9, 11, 10, 10, 9, 11, 10, 10, 10];
        Assert.Equal(5, SteadyState.WarmupWindows(ramp));
        // A congestion episode after the warm-up is not warm-up.
        double[] episode = [10, 10, 9, 30, 40, 30, 10, 10, 11, 10, 9, 10, 10, 11, 10, 10];
        Assert.Equal(0, SteadyState.WarmupWindows(episode));
    }

    /// <summary>A single FCFS server: arrivals every interArrivalS from 0, each served serviceS, service from startS.</summary>
    private static List<RequestRecord> SingleServer(int n, double interArrivalS, double serviceS, double startS)
    {
        var rows = new List<RequestRecord>(n);
        double free = startS;
        for (int i = 0; i < n; i++)
        {
            double a = i * interArrivalS, s = Math.Max(a, free);
            free = s + serviceS;
            rows.Add(Row(i, a, s, serviceS));
        }
        return rows;
    }

    private static RequestRecord Row(long id, double arrivalS, double scheduledS, double serviceS) =>
        new(id, arrivalS, 100, 10, 0, RequestStatus.Completed, scheduledS, scheduledS + serviceS / 10, null, scheduledS + serviceS, 0, 0, null, false);
}
