using RLMServing.Calibration;
using RLMServing.Catalog;
using RLMServing.Profiling.Traces;

namespace RLMServing.Profiling.Calibration;

/// <summary>
/// Iterations evaluated from a source that published fitted formulas instead of samples (DistServe: prefill
/// <c>a + b·Σlen + c·Σlen²</c>, decode <c>a + b·context tokens + c·batch</c> with small- and large-batch variants),
/// at the shapes its profiler covered (prompts 32–2048, batches 1–128, up to the model's context). The result is
/// only as good as the source's fit; the calibration's provenance says so.
/// </summary>
public static class CoefficientComposer
{
    public static IReadOnlyList<CalibrationSample> Compose(IReadOnlyList<CoefficientRow> rows, ModelArchitecture model)
    {
        CoefficientRow Kind(string kind) => rows.FirstOrDefault(r => r.Kind == kind)
            ?? throw new UserInputException($"the coefficient rows have no '{kind}' fit for this model and TP degree");
        var prefill = Kind("prefill");
        var small = Kind("decoding_smallbs");
        var large = Kind("decoding_largebs");
        double threshold = small.Threshold ?? double.PositiveInfinity;
        int maxContext = Math.Min(model.MaxContext, 2048);
        var samples = new List<CalibrationSample>();
        foreach (int b in new[] { 1, 2, 4, 8, 16 })
            for (long len = 32; len <= maxContext; len *= 2)
            {
                if (b * len > 2 * maxContext) continue;
                double t = prefill.A!.Value + prefill.B!.Value * b * len + prefill.C!.Value * b * (double)len * len;
                samples.Add(CalibrationSample.Prefill(b, len, t));
            }
        foreach (int b in new[] { 1, 2, 4, 8, 16, 32, 64, 96, 128 })
            for (long ctx = 64; ctx <= maxContext; ctx *= 2)
            {
                var f = b < threshold ? small : large;
                samples.Add(CalibrationSample.Decode(b, ctx, f.A!.Value + f.B!.Value * b * ctx + f.C!.Value * b));
            }
        return samples;
    }
}
