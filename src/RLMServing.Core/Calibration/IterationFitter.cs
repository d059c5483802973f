using MathNet.Numerics.LinearAlgebra;
using RLMServing.Costs;

namespace RLMServing.Calibration;

/// <summary>
/// Least squares on relative errors (each row divided by its measured time, so 1 ms decode steps weigh as much as
/// 1 s prefills; each phase weighs the same in total, however many rows it has), with non-negative coefficients (active set: a coefficient that comes out negative is fixed at 0
/// and the rest refitted). Features that the samples never vary are reported as unidentified and fixed at 0.
/// </summary>
public static class IterationFitter
{
    public static IterationFitResult Fit(IReadOnlyList<CalibrationSample> samples)
    {
        if (samples.Count < 3) throw new ArgumentException("at least three measured iterations are needed to fit a cost model");
        if (samples.Any(s => !(s.TimeUs > 0))) throw new ArgumentException("measured times must be positive");
        var unidentified = Unidentified(samples);
        var coefficients = Solve(samples, unidentified);
        var fitted = IterationCoefficients.FromVector(coefficients);
        var ape = samples.Select(s => Ape(fitted, s)).ToList();
        var byPhase = samples.Select((s, i) => (s.Phase, ape[i])).GroupBy(x => x.Phase)
            .ToDictionary(g => g.Key, g => g.Average(x => x.Item2));
        double loo = samples.Count > 6 ? LeaveOnePointOut(samples) : double.NaN;
        var names = unidentified.Select(i => IterationCoefficients.Names[i]).ToList();
        return new IterationFitResult(fitted, new FitQuality(samples.Count, ape.Average(), byPhase, loo, ape.Max()), names);
    }

    /// <summary>
    /// Each grid point's samples (same phase, batch and length; a sample off the grid alone) predicted by a fit to all
    /// the other points, so repeated runs of one configuration cannot vouch for each other.
    /// </summary>
    private static double LeaveOnePointOut(IReadOnlyList<CalibrationSample> samples)
    {
        var ape = new double[samples.Count];
        foreach (var point in Enumerable.Range(0, samples.Count).GroupBy(i => PointOf(samples[i], i)))
        {
            var held = point.ToHashSet();
            var rest = samples.Where((_, j) => !held.Contains(j)).ToList();
            var fit = IterationCoefficients.FromVector(Solve(rest, Unidentified(rest)));
            foreach (var i in held) ape[i] = Ape(fit, samples[i]);
        }
        return ape.Average();
    }

    /// <summary>The grid point a sample belongs to, for held-out errors.</summary>
    internal static (string Phase, double Batch, double Length) PointOf(CalibrationSample s, int index) =>
        s.Batch > 0 ? (s.Phase, s.Batch, s.Length) : (s.Phase, -index - 1.0, 0.0);

    /// <summary>The non-negative coefficients alone (no quality figures).</summary>
    public static IterationCoefficients Coefficients(IReadOnlyList<CalibrationSample> samples) =>
        IterationCoefficients.FromVector(Solve(samples, Unidentified(samples)));

    private static double Ape(IterationCoefficients c, CalibrationSample s) => Math.Abs(c.PredictUs(s.Features) - s.TimeUs) / s.TimeUs;

    /// <summary>Feature columns that are constant zero, or that only ever equal another column (Sampled = Tokens in decode-only data).</summary>
    private static HashSet<int> Unidentified(IReadOnlyList<CalibrationSample> samples)
    {
        var set = new HashSet<int>();
        var rows = samples.Select(s => s.Features.Vector()).ToList();
        for (int k = 1; k < 5; k++)
            if (rows.All(r => r[k] == 0)) set.Add(k);
        // Tokens and sampled sequences move together when every step is a decode step: keep tokens.
        if (!set.Contains(2) && rows.All(r => r[1] == r[2])) set.Add(2);
        return set;
    }

    private static double[] Solve(IReadOnlyList<CalibrationSample> samples, HashSet<int> fixedZero)
    {
        var active = Enumerable.Range(0, 5).Where(k => !fixedZero.Contains(k)).ToList();
        var perPhase = samples.GroupBy(s => s.Phase).ToDictionary(g => g.Key, g => g.Count());
        var rowWeight = samples.Select(s => Math.Sqrt(1.0 / perPhase[s.Phase])).ToArray();
        while (true)
        {
            var a = Matrix<double>.Build.Dense(samples.Count, active.Count, (i, j) => rowWeight[i] * samples[i].Features.Vector()[active[j]] / samples[i].TimeUs);
            // Columns differ by orders of magnitude (1 vs 10^9 attention pairs): scale them for a well-conditioned solve.
            var scale = Enumerable.Range(0, active.Count).Select(j => Math.Max(a.Column(j).AbsoluteMaximum(), 1e-300)).ToArray();
            var scaled = Matrix<double>.Build.Dense(a.RowCount, a.ColumnCount, (i, j) => a[i, j] / scale[j]);
            var y = Vector<double>.Build.Dense(samples.Count, i => rowWeight[i]);
            var x = scaled.QR().Solve(y);
            var beta = new double[5];
            for (int j = 0; j < active.Count; j++) beta[active[j]] = x[j] / scale[j];
            int worst = -1;
            foreach (var k in active) if (beta[k] < 0 && (worst < 0 || beta[k] < beta[worst])) worst = k;
            if (worst < 0) return beta;
            active.Remove(worst);
            if (active.Count == 0) return new double[5];
        }
    }
}
