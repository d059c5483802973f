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
        var waitingEvents = new List<(double T, int D)>(2 * n);
        var systemEvents = new List<(double T, int D)>(2 * n);
        foreach (var r in records)
        {
            if (r.FirstScheduledTimeS is not { } first) continue;   // rejected at admission: never queued
            int i = WindowOf(r.ArrivalTimeS);
            delaySum[i] += first - r.ArrivalTimeS;
            delayCount[i]++;
            waitingEvents.Add((r.ArrivalTimeS, 1));
            waitingEvents.Add((first, -1));
            systemEvents.Add((r.ArrivalTimeS, 1));
            systemEvents.Add((r.CompletionTimeS ?? last, -1));
        }
        var delay = new double[w];
        for (int i = 0; i < w; i++) delay[i] = delayCount[i] == 0 ? double.NaN : delaySum[i] / delayCount[i];
        var waiting = TimeAverages(waitingEvents, a0, width, w);
        var inSystem = TimeAverages(systemEvents, a0, width, w);

        int d = WarmupWindows(inSystem);
        double start = a0 + d * width;
        var delayTrend = TrendTest.MannKendall(delay[d..]);
        var queueTrend = TrendTest.MannKendall(waiting[d..]);
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

    /// <summary>Time average over each window of a count that steps by D at each event time.</summary>
    private static double[] TimeAverages(List<(double T, int D)> events, double t0, double width, int windows)
    {
        events.Sort((a, b) => a.T.CompareTo(b.T));
        var area = new double[windows];
        double end = t0 + width * windows, prev = t0;
        int level = 0;
        void Accumulate(double a, double b)
        {
            if (level == 0 || !(b > a)) return;
            for (int i = Math.Min((int)((a - t0) / width), windows - 1); i < windows && a < b; i++)
            {
                double stop = i == windows - 1 ? b : Math.Min(b, t0 + (i + 1) * width);
                if (stop > a) area[i] += level * (stop - a);
                a = Math.Max(a, stop);
            }
        }
        foreach (var (t, d) in events)
        {
            double at = Math.Clamp(t, t0, end);
            Accumulate(prev, at);
            prev = Math.Max(prev, at);
            level += d;
        }
        Accumulate(prev, end);
        for (int i = 0; i < windows; i++) area[i] /= width;
        return area;
    }
}
