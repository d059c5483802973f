using System.Globalization;

namespace RLMServing.Metrics;

/// <summary>
/// Where a run was in steady state, and whether it was stable there. <see cref="StartS"/> is the end of the warm-up,
/// <see cref="EndS"/> the last arrival (the drain after it is left out); the trends are over the windows between.
/// </summary>
public sealed record SteadyWindow(
    double FirstArrivalS,
    double StartS,
    double EndS,
    double LastCompletionS,
    TrendResult? DelayTrend,
    TrendResult? QueueTrend,
    bool Unstable,
    string? Reason)
{
    public double WarmupS => StartS - FirstArrivalS;
    public double DrainS => Math.Max(0, LastCompletionS - EndS);
}

/// <summary>
/// Finds a run's steady window from its request rows and tests it for a growing queue. The arrival span is cut into
/// equal time windows (about 10 arrivals each, 16 to 200 windows). Warm-up: the run starts empty and fills up
/// (<see cref="WarmupWindows"/>). Stability: one-sided
/// Mann-Kendall tests for an increasing trend over the steady windows of (a) the mean queueing delay of the requests
/// arriving in each (arrival to first schedule) and (b) the time-average number of requests waiting for their first
/// schedule. Unstable when a trend is significant at <see cref="Alpha"/> and its size over the steady window
/// (Sen's slope times the windows) is at least 1 s of queueing delay, or (b) at least the requests arriving in 1 s
/// (the same second by Little's law) — so a statistically clear but negligible drift of a stable system is not a
/// verdict.
/// </summary>
public static class SteadyState
{
    public const double Alpha = 0.01;
    public const int MinRequests = 40;
    private const int ArrivalsPerWindow = 10, MinWindows = 16, MaxWindows = 200;
    private const double DelayRiseFloorS = 1.0;

    public static SteadyWindow Analyze(IReadOnlyList<RequestRecord> records)
    {
        int n = records.Count;
        if (n == 0) return new SteadyWindow(0, 0, 0, 0, null, null, false, null);
        double a0 = double.PositiveInfinity, aN = double.NegativeInfinity, last = double.NegativeInfinity;
        foreach (var r in records)
        {
            a0 = Math.Min(a0, r.ArrivalTimeS);
            aN = Math.Max(aN, r.ArrivalTimeS);
            if (r.CompletionTimeS is { } c) last = Math.Max(last, c);
        }
        if (double.IsNegativeInfinity(last)) last = aN;
        double span = aN - a0;
        if (n < MinRequests || !(span > 0)) return new SteadyWindow(a0, a0, aN, last, null, null, false, null);

        int w = Math.Clamp(n / ArrivalsPerWindow, MinWindows, MaxWindows);
        double width = span / w;
        int WindowOf(double t) => Math.Clamp((int)((t - a0) / width), 0, w - 1);

        // Queueing delay by arrival window; waiting and in-system counts as step functions integrated per window.
        var delaySum = new double[w];
        var delayCount = new int[w];
        var waiting = new WindowAverage(a0, width, w);
        var inSystem = new WindowAverage(a0, width, w);
        foreach (var r in records)
        {
            if (r.FirstScheduledTimeS is not { } first) continue;   // rejected at admission: never queued
            int i = WindowOf(r.ArrivalTimeS);
            delaySum[i] += first - r.ArrivalTimeS;
            delayCount[i]++;
            waiting.Add(r.ArrivalTimeS, first);
            inSystem.Add(r.ArrivalTimeS, r.CompletionTimeS ?? last);
        }
        var delay = new double[w];
        for (int i = 0; i < w; i++) delay[i] = delayCount[i] == 0 ? double.NaN : delaySum[i] / delayCount[i];

        int d = WarmupWindows(inSystem.Averages());
        double start = a0 + d * width;
        var delayTrend = TrendTest.MannKendall(delay[d..]);
        var queueTrend = TrendTest.MannKendall(waiting.Averages()[d..]);
        int steadyWindows = w - d;
        double delayRise = delayTrend.SenSlope * steadyWindows;
        double queueRise = queueTrend.SenSlope * steadyWindows;
        double ratePerS = n / span;
        string F(double x) => x.ToString("G3", CultureInfo.InvariantCulture);
        string? reason = null;
        if (delayTrend.PIncreasing < Alpha && delayRise >= DelayRiseFloorS)
            reason = $"queueing delay rose by {F(delayRise)} s over the steady window ({F(aN - start)} s; Mann-Kendall p = {F(delayTrend.PIncreasing)}): arrivals exceed capacity";
        else if (queueTrend.PIncreasing < Alpha && queueRise >= Math.Max(1, ratePerS * DelayRiseFloorS))
            reason = $"the queue grew by {F(queueRise)} requests over the steady window ({F(aN - start)} s; Mann-Kendall p = {F(queueTrend.PIncreasing)}): arrivals exceed capacity";
        return new SteadyWindow(a0, start, aN, last, delayTrend, queueTrend, reason is not null, reason);
    }

    /// <summary>
    /// Windows of warm-up: the run starts empty and the number of requests in the system climbs until the longest
    /// requests of the first arrivals have been served; warm-up ends at the first window whose mean reaches the
    /// median of the second half's windows (the level the system settled at), and at most at half the windows.
    /// A congestion episode later in the run is not warm-up and stays in the window.
    /// </summary>
    public static int WarmupWindows(IReadOnlyList<double> inSystem)
    {
        int w = inSystem.Count;
        var late = inSystem.Skip(w / 2).ToArray();
        double level = MathNet.Numerics.Statistics.ArrayStatistics.MedianInplace(late);
        for (int i = 0; i < w / 2; i++)
            if (inSystem[i] >= level) return i;
        return w / 2;
    }

    /// <summary>
    /// Time average over each of equal windows of a count of requests present, each present over one interval (arrival
    /// to first schedule, arrival to completion). Each interval adds its overlap with the windows it touches: its partial
    /// first and last windows directly, the windows it spans whole through a difference array — O(rows + windows),
    /// where sorting the interval ends as events cost most of a 100k-row summary.
    /// </summary>
    internal sealed class WindowAverage(double t0, double width, int windows)
    {
        private readonly double _end = t0 + width * windows;
        private readonly double[] _partial = new double[windows];
        private readonly int[] _wholeSteps = new int[windows + 1];

        public void Add(double fromS, double toS)
        {
            double a = Math.Clamp(fromS, t0, _end), b = Math.Clamp(toS, t0, _end);
            if (!(b > a)) return;
            int i = Math.Min((int)((a - t0) / width), windows - 1);
            int j = Math.Min((int)((b - t0) / width), windows - 1);
            while (j > i && t0 + j * width >= b) j--;   // b on (or, rounded, just below) a boundary ends in the window before
            if (i == j)
            {
                _partial[i] += b - a;
                return;
            }
            _partial[i] += t0 + (i + 1) * width - a;
            _partial[j] += b - (t0 + j * width);
            _wholeSteps[i + 1]++;
            _wholeSteps[j]--;
        }

        public double[] Averages()
        {
            var mean = new double[windows];
            int whole = 0;
            for (int k = 0; k < windows; k++)
            {
                whole += _wholeSteps[k];
                mean[k] = (_partial[k] + whole * width) / width;
            }
            return mean;
        }
    }
}
