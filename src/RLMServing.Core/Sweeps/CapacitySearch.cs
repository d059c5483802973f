namespace RLMServing.Sweeps;

/// <summary>
/// Bounds and precision of a capacity search, in requests per second. Rates probed lie on one geometric grid,
/// StartRate × (1 + Tolerance)^k clamped to [MinRate, MaxRate], so searches that take different paths (another
/// start, a hint from a shorter horizon) land on the same numbers.
/// </summary>
public sealed record CapacitySearchOptions(double StartRate, double MinRate, double MaxRate, double Tolerance, int MaxProbes)
{
    private double Start => Math.Clamp(StartRate, MinRate, MaxRate);
    private double LogStep => Math.Log(1 + Tolerance);
    internal int KMin => (int)Math.Floor(Math.Log(MinRate / Start) / LogStep);
    internal int KMax => (int)Math.Ceiling(Math.Log(MaxRate / Start) / LogStep);

    /// <summary>The grid's k-th rate (k = 0 is the start rate).</summary>
    public double RateAt(int k) => k <= KMin ? MinRate : k >= KMax ? MaxRate : Math.Clamp(Start * Math.Pow(1 + Tolerance, k), MinRate, MaxRate);

    /// <summary>The grid index of a rate the grid produced (the nearest one otherwise).</summary>
    internal int IndexOf(double rate) =>
        rate <= MinRate ? KMin : rate >= MaxRate ? KMax : Math.Clamp((int)Math.Round(Math.Log(rate / Start) / LogStep), KMin, KMax);
}

/// <summary>The highest rate that met the objective (0 when even the minimum failed) and every probe made.</summary>
public sealed record CapacityResult(double MaxRate, IReadOnlyList<(double Rate, bool Meets)> Probes)
{
    /// <summary>True when the maximum rate of the search still met the objective (the capacity is at least that).</summary>
    public bool Saturated(CapacitySearchOptions o) => MaxRate >= o.MaxRate;
}

/// <summary>What one probe (a rate at a horizon of so many requests) found.</summary>
/// <param name="Figures">The numbers the objective reads (goodput fraction, latency limits): they must settle too.</param>
/// <param name="SteadyWindowS">Length of the run's steady window.</param>
/// <param name="LongestServiceS">How long the longest requests are served (p99 of completion − first schedule).</param>
public sealed record ProbeOutcome(bool Meets, IReadOnlyList<double> Figures, double SteadyWindowS, double LongestServiceS);

/// <summary>
/// How long probes run: from <see cref="BaseRequests"/>, doubled until the answer settles, at most
/// <see cref="MaxRequests"/>. Settled: the same rate passes and the next grid rate fails at both horizons, and either
/// the steady window spans <see cref="ServiceTimes"/> of the longest requests' service times, or it spans
/// <see cref="MinServiceTimes"/> of them and the figures moved less than <see cref="MaxChange"/> (relative) between
/// the horizons (two short runs agreeing by chance is not a steady state: the longest requests must have been
/// served many times over).
/// </summary>
public sealed record ConvergenceOptions(int BaseRequests, int MaxRequests, double MaxChange, double MinServiceTimes, double ServiceTimes);

/// <summary>A capacity answer with the horizon that decided it; <see cref="Converged"/> false when the cap came first.</summary>
public sealed record ConvergedCapacity(double MaxRate, int Requests, bool Converged, IReadOnlyList<(int Requests, double MaxRate)> Horizons);

/// <summary>
/// Finds the highest rate meeting an objective that is monotone in the rate (met below a threshold, missed above):
/// on the grid of <see cref="CapacitySearchOptions"/>, brackets from the start (steps doubling from one that doubles
/// the rate, or from one grid step next to a hint) until the outcome flips, then bisects the grid indices between.
/// Pure: the probe does the simulation.
/// </summary>
public static class CapacitySearch
{
    public static CapacityResult Find(Func<double, bool> meets, CapacitySearchOptions o, double? hint = null)
    {
        var probes = new List<(double, bool)>();
        var seen = new Dictionary<int, bool>();
        bool Probe(int k)
        {
            if (seen.TryGetValue(k, out var known)) return known;
            double rate = o.RateAt(k);
            bool ok = meets(rate);
            probes.Add((rate, ok));
            seen[k] = ok;
            return ok;
        }

        int kMin = o.KMin, kMax = o.KMax;
        int k0 = hint is { } h ? o.IndexOf(h) : Math.Clamp(0, kMin, kMax);
        int step = hint is null ? Math.Max(1, (int)Math.Round(Math.Log(2) / Math.Log(1 + o.Tolerance))) : 1;
        int? lo = null, hi = null;
        if (Probe(k0))
        {
            lo = k0;
            while (lo < kMax && probes.Count < o.MaxProbes)
            {
                int k = (int)Math.Min((long)lo.Value + step, kMax);
                if (Probe(k)) lo = k;
                else { hi = k; break; }
                step *= 2;
            }
            if (hi is null) return new CapacityResult(o.RateAt(lo.Value), probes);
        }
        else
        {
            hi = k0;
            while (hi > kMin && probes.Count < o.MaxProbes)
            {
                int k = (int)Math.Max((long)hi.Value - step, kMin);
                if (Probe(k)) { lo = k; break; }
                hi = k;
                step *= 2;
            }
            if (lo is null) return new CapacityResult(0, probes);
        }
        while (hi.Value - lo.Value > 1 && probes.Count < o.MaxProbes)
        {
            int mid = lo.Value + (hi.Value - lo.Value) / 2;
            if (Probe(mid)) lo = mid;
            else hi = mid;
        }
        return new CapacityResult(o.RateAt(lo.Value), probes);
    }

    /// <summary>
    /// Searches at growing horizons (requests doubled) until the answer settles (<see cref="ConvergenceOptions"/>);
    /// each longer search starts next to the previous answer, so a settled answer costs two probes there.
    /// </summary>
    public static ConvergedCapacity FindConverged(Func<double, int, ProbeOutcome> probe, CapacitySearchOptions o, ConvergenceOptions c)
    {
        int n = c.BaseRequests;
        var result = Find(r => probe(r, n).Meets, o);
        var horizons = new List<(int, double)> { (n, result.MaxRate) };
        while ((long)n * 2 <= c.MaxRequests)
        {
            int n2 = n * 2;
            var next = Find(r => probe(r, n2).Meets, o, hint: result.MaxRate > 0 ? result.MaxRate : o.MinRate);
            horizons.Add((n2, next.MaxRate));
            if (Settled(probe, o, result, next, n, n2, c) is { } answer)
                return new ConvergedCapacity(answer, n2, true, horizons);
            result = next;
            n = n2;
        }
        return new ConvergedCapacity(result.MaxRate, n, false, horizons);
    }

    /// <summary>
    /// The settled answer, or null. Both horizons give the same rate, the grid rate above it fails at both, and the
    /// figures at the answer stopped moving (or the window is long enough on its own). A rate right at the threshold
    /// that passes at one horizon and fails at the next is not settled: the horizon grows until it stops flipping.
    /// </summary>
    private static double? Settled(Func<double, int, ProbeOutcome> probe, CapacitySearchOptions o, CapacityResult before, CapacityResult after,
        int n, int n2, ConvergenceOptions c)
    {
        if (before.MaxRate != after.MaxRate) return null;
        bool none = after.MaxRate == 0;
        int k = none ? o.KMin : o.IndexOf(after.MaxRate);
        if (!none && k < o.KMax && (probe(o.RateAt(k + 1), n).Meets || probe(o.RateAt(k + 1), n2).Meets)) return null;
        var a = probe(o.RateAt(k), n);
        var b = probe(o.RateAt(k), n2);
        double answer = after.MaxRate;
        if (b.SteadyWindowS >= c.ServiceTimes * b.LongestServiceS && b.LongestServiceS > 0) return answer;
        if (b.SteadyWindowS < c.MinServiceTimes * b.LongestServiceS || a.Figures.Count != b.Figures.Count) return null;
        for (int i = 0; i < a.Figures.Count; i++)
        {
            double x = a.Figures[i], y = b.Figures[i];
            if (!double.IsFinite(x) || !double.IsFinite(y)) return null;
            double scale = Math.Max(Math.Abs(x), Math.Abs(y));
            if (scale > 0 && Math.Abs(y - x) / scale >= c.MaxChange) return null;
        }
        return answer;
    }
}

/// <summary>Deployment arithmetic on top of a capacity: GPUs for a target load and cost per million tokens.</summary>
public static class CapacityPlanning
{
    /// <summary>
    /// Replicas needed for <paramref name="targetRate"/> when one replica sustains maxRate / replicas (replicas are
    /// independent under round-robin routing), times the GPUs per replica; null when the configuration meets the
    /// objective at no rate.
    /// </summary>
    public static int? GpusForTarget(double maxRate, int replicas, int gpusPerReplica, double targetRate)
    {
        if (!(maxRate > 0)) return null;
        double perReplica = maxRate / replicas;
        long needed = (long)Math.Ceiling(targetRate / perReplica - 1e-9);
        return (int)Math.Max(1, Math.Min(int.MaxValue / gpusPerReplica, needed)) * gpusPerReplica;
    }

    /// <summary>Dollars per million generated tokens: the GPUs' hourly price over the output tokens they produce in an hour.</summary>
    public static double? UsdPerMillionTokens(int gpus, double usdPerGpuHour, double outputTokensPerS) =>
        outputTokensPerS > 0 ? gpus * usdPerGpuHour / 3600.0 / outputTokensPerS * 1e6 : null;
}
