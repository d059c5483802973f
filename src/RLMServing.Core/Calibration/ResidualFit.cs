namespace RLMServing.Calibration;

/// <summary>Held-out error of the whole calibrated model (regression and interpolated residuals), overall and per phase.</summary>
public sealed record InterpolatedQuality(double LeaveOneOutMape, IReadOnlyDictionary<string, double> LeaveOneOutByPhase);

/// <summary>
/// Builds the residual tables (measured/regression on each phase's grid) on top of a fitted regression, and the
/// held-out error of the result: each grid point's samples predicted by a regression refitted without them and
/// residuals interpolated from the other points only. In-sample error inside the grid is zero by construction, so only the
/// held-out figure says how well the interpolation predicts.
/// </summary>
public static class ResidualFit
{
    public static Dictionary<string, ResidualTable> Tables(IterationCoefficients c, IEnumerable<CalibrationSample> samples) =>
        samples.Where(s => s.Batch > 0 && s.Length > 0 && s.Phase is "prefill" or "decode" && c.PredictUs(s.Features) > 0)
            .GroupBy(s => s.Phase)
            .ToDictionary(g => g.Key, g => ResidualTable.FromPoints(g.Select(s => (s.Batch, s.Length, s.TimeUs / c.PredictUs(s.Features))).ToList()));

    public static CalibratedIterationModel Model(IReadOnlyList<CalibrationSample> samples)
    {
        var c = IterationFitter.Coefficients(samples);
        return CalibratedIterationModel.From(c, Tables(c, samples));
    }

    public static double Predict(CalibratedIterationModel model, CalibrationSample s) => model.PredictUs(s.Features, s.Phase, s.Batch, s.Length);

    /// <summary>
    /// Leave-one-grid-point-out: every sample at one (phase, batch, length) point is held out together, so repeated
    /// runs of one configuration (Splitwise ships about five) cannot predict each other.
    /// </summary>
    public static InterpolatedQuality LeaveOneOut(IReadOnlyList<CalibrationSample> samples)
    {
        if (samples.Count <= 6) return new InterpolatedQuality(double.NaN, new Dictionary<string, double>());
        var ape = new double[samples.Count];
        var points = Enumerable.Range(0, samples.Count)
            .GroupBy(i => IterationFitter.PointOf(samples[i], i));
        foreach (var point in points)
        {
            var held = point.ToHashSet();
            var model = Model(samples.Where((_, j) => !held.Contains(j)).ToList());
            foreach (var i in held) ape[i] = Math.Abs(Predict(model, samples[i]) - samples[i].TimeUs) / samples[i].TimeUs;
        }
        var byPhase = samples.Select((s, i) => (s.Phase, Ape: ape[i])).GroupBy(x => x.Phase).ToDictionary(g => g.Key, g => g.Average(x => x.Ape));
        return new InterpolatedQuality(ape.Average(), byPhase);
    }
}
