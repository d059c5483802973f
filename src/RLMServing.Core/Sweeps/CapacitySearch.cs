namespace RLMServing.Sweeps;

/// <summary>Bounds and precision of a capacity search, in requests per second.</summary>
public sealed record CapacitySearchOptions(double StartRate, double MinRate, double MaxRate, double Tolerance, int MaxProbes);

/// <summary>The highest rate that met the objective (0 when even the minimum failed) and every probe made.</summary>
public sealed record CapacityResult(double MaxRate, IReadOnlyList<(double Rate, bool Meets)> Probes)
{
    /// <summary>True when the maximum rate of the search still met the objective (the capacity is at least that).</summary>
    public bool Saturated(CapacitySearchOptions o) => MaxRate >= o.MaxRate;
}

/// <summary>
/// Finds the highest rate meeting an objective that is monotone in the rate (met below a threshold, missed above):
/// brackets by doubling up (or halving down) from the start rate until the outcome flips, then bisects the
/// bracket until it is narrower than the relative tolerance. Pure: the probe does the simulation.
/// </summary>
public static class CapacitySearch
{
    public static CapacityResult Find(Func<double, bool> meets, CapacitySearchOptions o)
    {
        var probes = new List<(double, bool)>();
        bool Probe(double rate)
        {
            bool ok = meets(rate);
            probes.Add((rate, ok));
            return ok;
        }

        double? lo = null, hi = null;
        double r = Math.Clamp(o.StartRate, o.MinRate, o.MaxRate);
        if (Probe(r))
        {
            lo = r;
            while (lo < o.MaxRate && probes.Count < o.MaxProbes)
            {
                r = Math.Min(lo.Value * 2, o.MaxRate);
                if (Probe(r)) lo = r;
                else { hi = r; break; }
            }
            if (hi is null) return new CapacityResult(lo.Value, probes);
        }
        else
        {
            hi = r;
            while (hi > o.MinRate && probes.Count < o.MaxProbes)
            {
                r = Math.Max(hi.Value / 2, o.MinRate);
                if (Probe(r)) { lo = r; break; }
                hi = r;
            }
            if (lo is null) return new CapacityResult(0, probes);
        }
        while (hi.Value - lo.Value > o.Tolerance * lo.Value && probes.Count < o.MaxProbes)
        {
            double mid = (lo.Value + hi.Value) / 2;
            if (Probe(mid)) lo = mid;
            else hi = mid;
        }
        return new CapacityResult(lo.Value, probes);
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
