namespace RLMServing.Calibration;

/// <summary>Held-out error of the whole calibrated model (regression and interpolated residuals), overall and per phase.</summary>
public sealed record InterpolatedQuality(double LeaveOneOutMape, IReadOnlyDictionary<string, double> LeaveOneOutByPhase);

/// <summary>
/// Builds the residual tables (measured/regression on each phase's grid) on top of a fitted regression, and the
/// leave-one-out error of the result: each sample predicted by a regression refitted without it and residuals
/// interpolated from the other samples only. In-sample error inside the grid is zero by construction, so only the
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

    public static InterpolatedQuality LeaveOneOut(IReadOnlyList<CalibrationSample> samples)
    {
        if (samples.Count <= 6) return new InterpolatedQuality(double.NaN, new Dictionary<string, double>());
        var ape = samples.Select((s, i) =>
        {
            var rest = samples.Where((_, j) => j != i).ToList();
            return Math.Abs(Predict(Model(rest), s) - s.TimeUs) / s.TimeUs;
        }).ToList();
        var byPhase = samples.Select((s, i) => (s.Phase, Ape: ape[i])).GroupBy(x => x.Phase).ToDictionary(g => g.Key, g => g.Average(x => x.Ape));
        return new InterpolatedQuality(ape.Average(), byPhase);
    }
}
