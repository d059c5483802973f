using RLMServing.Costs;

namespace RLMServing.Calibration;

/// <summary>
/// A calibrated iteration-time predictor: the physically shaped regression is the backbone, and inside the measured
/// grid it is multiplied by the measured/regression ratio interpolated there (so it reproduces the measurements
/// exactly on their grid points). Beyond the largest measured batch or length, the deviation measured at the grid's
/// edge is carried as a constant number of microseconds on top of the regression: predictions keep growing with the
/// regression (monotone in tokens and context) while the correction's share fades as the work grows, so 32k–128k
/// contexts are priced by the regression's physics. Below the grid the edge ratio is kept.
/// </summary>
public sealed class CalibratedIterationModel(IterationCoefficients coefficients, ResidualSurface? prefill = null, ResidualSurface? decode = null)
{
    public IterationCoefficients Coefficients { get; } = coefficients;
    public ResidualSurface? PrefillResiduals { get; } = prefill;
    public ResidualSurface? DecodeResiduals { get; } = decode;

    public static CalibratedIterationModel From(IterationCoefficients c, IReadOnlyDictionary<string, ResidualTable>? residuals) =>
        new(c, Surface(residuals, "prefill"), Surface(residuals, "decode"));

    private static ResidualSurface? Surface(IReadOnlyDictionary<string, ResidualTable>? residuals, string phase) =>
        residuals is not null && residuals.TryGetValue(phase, out var t) ? new ResidualSurface(t) : null;

    /// <summary>
    /// Time of a general iteration. A step with at least as many prefill tokens as decodes is corrected by the
    /// prefill residuals at (chunks, mean chunk end position), otherwise by the decode residuals at (decodes, mean KV length).
    /// </summary>
    public double PredictUs(in BatchShape shape)
    {
        var f = IterationFeatures.Of(shape);
        int chunks = shape.Prefills.Length;
        if (chunks > 0 && shape.PrefillTokens >= shape.DecodeCount)
        {
            double end = 0;
            foreach (var c in shape.Prefills.Span) end += c.Tokens + c.ContextTokens;
            return PredictUs(f, "prefill", chunks, end / chunks);
        }
        return shape.DecodeCount > 0 ? PredictUs(f, "decode", shape.DecodeCount, (double)shape.DecodeKvSum / shape.DecodeCount) : Coefficients.PredictUs(f);
    }

    public double PredictDecodeUs(int decodeCount, double kvSum) =>
        PredictUs(IterationFeatures.Decode(decodeCount, kvSum), "decode", decodeCount, kvSum / decodeCount);

    /// <summary>Time of an iteration with these features, at (batch, length per sequence) of this phase's grid.</summary>
    public double PredictUs(in IterationFeatures f, string phase, double batch, double length)
    {
        double regression = Coefficients.PredictUs(f);
        var surface = phase == "prefill" ? PrefillResiduals : phase == "decode" ? DecodeResiduals : null;
        if (surface is null || !(batch > 0) || !(length > 0)) return regression;
        var (b, l, above) = surface.Clamp(batch, length);
        double ratio = surface.Ratio(b, l);
        if (!above) return regression * ratio;
        double edge = Coefficients.PredictUs(Canonical(phase, b, l));
        // Both candidates grow with the regression; the second keeps a measured-faster edge from going negative.
        return Math.Max(regression + edge * (ratio - 1), regression * Math.Min(ratio, 1));
    }

    /// <summary>The features of a grid point: batch prompts of length tokens (prefill), or batch decodes at length KV each.</summary>
    public static IterationFeatures Canonical(string phase, double batch, double length) => phase == "prefill"
        ? new IterationFeatures(batch * length, batch, 0, batch * length * (length + 1) / 2.0)
        : new IterationFeatures(batch, batch, batch * length, 0);
}
