using RLMServing.Calibration;

namespace RLMServing.Costs;

/// <summary>
/// Iteration time from coefficients fitted to measurements (rlms calibrate); the FLOPs and bytes reported for
/// utilisation estimates still come from the roofline's counts, which do not depend on the engine.
/// </summary>
public sealed class CalibratedCostModel(IterationCoefficients coefficients, RooflineCostModel work) : ICostModel
{
    public IterationCoefficients Coefficients { get; } = coefficients;

    public double PeakFlops => work.PeakFlops;
    public double PeakBandwidth => work.PeakBandwidth;

    public IterationCost Iteration(in BatchShape shape)
    {
        var w = work.Iteration(shape);
        // Compression scoring was never measured: its time comes from the roofline, added to the fitted step.
        double scoringS = work.Scoring(shape).TimeS;
        return w with { TimeS = (shape.TotalTokens == 0 ? 0 : Coefficients.PredictUs(IterationFeatures.Of(shape)) / 1e6) + scoringS };
    }

    public IterationCost Decode(int decodeCount, long kvSum)
    {
        var w = work.Decode(decodeCount, kvSum);
        return w with { TimeS = decodeCount == 0 ? 0 : Coefficients.PredictUs(IterationFeatures.Decode(decodeCount, kvSum)) / 1e6 };
    }
}
