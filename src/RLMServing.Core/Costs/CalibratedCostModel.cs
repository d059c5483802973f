using RLMServing.Calibration;

namespace RLMServing.Costs;

/// <summary>
/// Iteration time from a model fitted to measurements (rlms calibrate: regression plus the interpolated measured
/// residuals); the FLOPs and bytes reported for utilisation estimates still come from the roofline's counts, which do
/// not depend on the engine.
/// </summary>
public sealed class CalibratedCostModel(CalibratedIterationModel model, RooflineCostModel work) : ICostModel
{
    public CalibratedCostModel(IterationCoefficients coefficients, RooflineCostModel work) : this(new CalibratedIterationModel(coefficients), work) { }

    public CalibratedIterationModel Model { get; } = model;
    public IterationCoefficients Coefficients => Model.Coefficients;

    public double PeakFlops => work.PeakFlops;
    public double PeakBandwidth => work.PeakBandwidth;
    public double FixedStepS => Coefficients.BaseUs / 1e6;

    public IterationCost Iteration(in BatchShape shape)
    {
        var w = work.Iteration(shape);
        // Compression scoring was never measured: its time comes from the roofline, added to the fitted step.
        double scoringS = work.Scoring(shape).TimeS;
        return w with { TimeS = (shape.TotalTokens == 0 ? 0 : Model.PredictUs(shape) / 1e6) + scoringS };
    }

    public IterationCost Decode(int decodeCount, long kvSum, KvSpread spread = default)
    {
        var w = work.Decode(decodeCount, kvSum);
        return w with { TimeS = decodeCount == 0 ? 0 : Model.PredictDecodeUs(decodeCount, kvSum) / 1e6 };
    }
}
