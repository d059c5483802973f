using MathNet.Numerics.Statistics;

namespace RLMServing.Metrics;

/// <summary>Percentiles as vLLM reports them (numpy's default: linear interpolation, MathNet's R7).</summary>
public static class Percentiles
{
    public static double[] Sorted(IEnumerable<double> xs)
    {
        var a = xs.ToArray();
        Array.Sort(a);
        return a;
    }

    /// <summary>The q-quantile (0..1) of sorted values; 0 for no values.</summary>
    public static double Of(double[] sorted, double q) =>
        sorted.Length == 0 ? 0 : SortedArrayStatistics.QuantileCustom(sorted, q, QuantileDefinition.R7);
}
