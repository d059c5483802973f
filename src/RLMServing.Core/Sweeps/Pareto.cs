namespace RLMServing.Sweeps;

/// <summary>The Pareto frontier of points to minimise on two objectives (cost and latency).</summary>
public static class Pareto
{
    /// <summary>
    /// True for each point that no other point dominates (no worse on both objectives and better on one); points
    /// with a missing objective are never on the frontier. Equal points are all on it. O(n log n).
    /// </summary>
    public static bool[] Frontier(IReadOnlyList<(double? Cost, double? Latency)> points)
    {
        var on = new bool[points.Count];
        var idx = Enumerable.Range(0, points.Count)
            .Where(i => points[i].Cost is { } c && points[i].Latency is { } l && double.IsFinite(c) && double.IsFinite(l))
            .OrderBy(i => points[i].Cost!.Value).ThenBy(i => points[i].Latency!.Value).ToList();
        double best = double.PositiveInfinity;   // lowest latency among strictly cheaper points
        for (int g = 0; g < idx.Count;)
        {
            double cost = points[idx[g]].Cost!.Value;
            int end = g;
            while (end < idx.Count && points[idx[end]].Cost!.Value == cost) end++;
            double groupMin = points[idx[g]].Latency!.Value;
            for (int k = g; k < end; k++)
                on[idx[k]] = points[idx[k]].Latency!.Value == groupMin && groupMin < best;
            best = Math.Min(best, groupMin);
            g = end;
        }
        return on;
    }
}
