using MathNet.Numerics.Distributions;
using MathNet.Numerics.Statistics;

namespace RLMServing.Metrics;

/// <summary>A Mann-Kendall test for an increasing trend, with Sen's slope (per step of the series).</summary>
public sealed record TrendResult(int Points, double S, double Z, double PIncreasing, double SenSlope);

/// <summary>
/// The Mann-Kendall trend test (Mann 1945, Kendall 1975): S counts rising minus falling pairs of a series; under "no
/// trend" it is approximately normal with variance n(n−1)(2n+5)/18, less a term per group of ties. Rank-based, so one
/// outlier window cannot make or hide a trend. Sen's slope (the median of the pairwise slopes) measures its size.
/// </summary>
public static class TrendTest
{
    /// <summary>The test over <paramref name="series"/>, in order; NaN entries (empty windows) are left out.</summary>
    public static TrendResult MannKendall(IReadOnlyList<double> series)
    {
        var x = new List<(int I, double V)>();
        for (int i = 0; i < series.Count; i++) if (!double.IsNaN(series[i])) x.Add((i, series[i]));
        int n = x.Count;
        if (n < 3) return new TrendResult(n, 0, 0, 1, 0);
        double s = 0;
        var slopes = new double[n * (n - 1) / 2];
        int k = 0;
        for (int i = 0; i < n - 1; i++)
            for (int j = i + 1; j < n; j++)
            {
                double d = x[j].V - x[i].V;
                s += Math.Sign(d);
                slopes[k++] = d / (x[j].I - x[i].I);
            }
        double variance = n * (n - 1.0) * (2 * n + 5) / 18;
        foreach (var tie in x.GroupBy(p => p.V).Where(g => g.Count() > 1))
        {
            double t = tie.Count();
            variance -= t * (t - 1) * (2 * t + 5) / 18;
        }
        // Continuity correction: S moves in steps of 2 (1 with ties).
        double z = variance <= 0 ? 0 : s > 0 ? (s - 1) / Math.Sqrt(variance) : s < 0 ? (s + 1) / Math.Sqrt(variance) : 0;
        double p = 1 - Normal.CDF(0, 1, z);
        return new TrendResult(n, s, z, p, ArrayStatistics.MedianInplace(slopes));
    }
}
