using System.Globalization;
using RLMServing.Calibration;
using RLMServing.Costs;
using RLMServing.IO.Calibration;
using RLMServing.Profiling.Traces;
using RLMServing.Tests.Cli;
using RLMServing.Tests.Simulation;
using Xunit;
using Xunit.Abstractions;

namespace RLMServing.Tests.Fidelity;

/// <summary>
/// Held-out public real-GPU check: Llama-2-70B iteration times measured by Splitwise on DGX-A100 and DGX-H100 (TP2,
/// TP4, TP8), predicted by calibrations that never saw them — the operator-level calibrations built from Vidur's
/// A100/H100 operator profiles (another team, another engine) — and by the uncalibrated roofline. The bounds are the
/// errors measured when the calibrations were built; docs/fidelity.md has the table.
/// </summary>
public class PublicGpuFidelityTests(ITestOutputHelper output)
{
    public sealed record Row(string Device, int Tp, string Predictor, string Phase, int Samples, double Mape, double MeanSignedError);

    public static IReadOnlyList<Row> Compare()
    {
        var root = RlmsProcess.RepoRoot();
        var measured = TraceReader.Read<IterationRow>(Path.Combine(root, "traces", "public", "splitwise", "splitwise-iterations.parquet"))
            .Where(r => r.Model == "llama2-70b" && r.Device is "a100-80gb" or "h100-80gb" && r.TimeUsMedian > 0).ToList();
        var arch = TestScenarios.Catalog.Model("Llama-2-70B");
        var rows = new List<Row>();
        foreach (var g in measured.GroupBy(r => (r.Device, r.Tp)).OrderBy(g => g.Key.Device).ThenBy(g => g.Key.Tp))
        {
            string gpuPrefix = g.Key.Device[..4];
            var gpu = TestScenarios.Catalog.Gpu(gpuPrefix);
            var roofline = new RooflineCostModel(arch, gpu, g.Key.Tp, 0.6, 0.85, 1.0, 10);
            var vidur = CalibrationStore.Read(Path.Combine(root, "calibration", $"{gpuPrefix}-llama-2-70b-tp{g.Key.Tp}-vidur.json"));
            var predictors = new (string Name, ICostModel Model)[]
            {
                ("vidur-operators", new CalibratedCostModel(vidur.ToModel(), roofline)),
                ("roofline", roofline),
            };
            foreach (var (name, model) in predictors)
                foreach (var phase in new[] { "prefill", "decode" })
                {
                    var errors = g.Where(r => r.Phase == phase).Select(r =>
                    {
                        var shape = phase == "prefill"
                            ? new BatchShape(Enumerable.Repeat(new PrefillChunk((int)r.NewTokens, 0, true), r.Batch).ToArray(), 0, 0)
                            : BatchShape.DecodeOnly(r.Batch, (long)r.Batch * r.Context);
                        return (model.Iteration(shape).TimeS * 1e6 - r.TimeUsMedian) / r.TimeUsMedian;
                    }).ToList();
                    rows.Add(new Row(g.Key.Device, g.Key.Tp, name, phase, errors.Count, errors.Average(Math.Abs), errors.Average()));
                }
        }
        return rows;
    }

    [Fact]
    public void VidurOperatorCalibrationsPredictSplitwiseMeasurements()
    {
        var rows = Compare();
        foreach (var r in rows)
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {r.Device} | TP{r.Tp} | {r.Predictor} | {r.Phase} | {r.Samples} | {r.Mape * 100:F1}% | {r.MeanSignedError * 100:+0.0;-0.0}% |"));
        Assert.Equal(2 * 3 * 2 * 2, rows.Count);
        // Two engines disagree (Splitwise's decode steps are 2-3x the memory bound at TP4/TP8): the bound is the error
        // measured when the calibrations were built, and the measured operators must beat the datasheet everywhere.
        foreach (var r in rows.Where(r => r.Predictor == "vidur-operators"))
        {
            Assert.True(r.Mape < 0.65, $"{r.Device} TP{r.Tp} {r.Phase}: {r.Mape:P1}");
            var roofline = rows.Single(x => x.Predictor == "roofline" && (x.Device, x.Tp, x.Phase) == (r.Device, r.Tp, r.Phase));
            Assert.True(r.Mape < roofline.Mape, $"{r.Device} TP{r.Tp} {r.Phase}: {r.Mape:P1} vs roofline {roofline.Mape:P1}");
        }
    }

    /// <summary>
    /// LLMServingSim measured decode attention with unequal KV lengths (skew.csv): t_skew_us for the skewed batch and
    /// t_mean_us for a uniform batch at the same mean, i.e. the same Σ KV — exactly what a cost model priced by the
    /// sum of KV lengths (ours) predicts from the uniform measurements. Their difference is the error of that choice.
    /// </summary>
    public static IReadOnlyList<(int Tp, int Samples, double P50, double P90, double MeanSigned, double MaxP50)> SkewErrors()
    {
        var rows = TraceReader.Read<OperatorRow>(Path.Combine(RlmsProcess.RepoRoot(), "traces", "public", "llmservingsim", "rtxpro6000-llama-3.1-8b-bf16.parquet"))
            .Where(r => r.SourceOp == "skew" && r.TimeUsMedian > 0).ToList();
        double Extra(OperatorRow r, string key) => double.Parse(r.Extra.Split(';').First(kv => kv.StartsWith(key + "=", StringComparison.Ordinal))[(key.Length + 1)..], CultureInfo.InvariantCulture);
        return rows.GroupBy(r => r.Tp).OrderBy(g => g.Key).Select(g =>
        {
            var sum = g.Select(r => (Extra(r, "t_mean_us") - r.TimeUsMedian) / r.TimeUsMedian).ToList();
            var max = g.Select(r => Math.Abs(Extra(r, "t_max_us") - r.TimeUsMedian) / r.TimeUsMedian).Order().ToList();
            var abs = sum.Select(Math.Abs).Order().ToList();
            return (g.Key, abs.Count, abs[abs.Count / 2], abs[(int)(abs.Count * 0.9)], sum.Average(), max[max.Count / 2]);
        }).ToList();
    }

    [Fact]
    public void PricingDecodeAttentionBySummedKvMatchesSkewedBatches()
    {
        var rows = SkewErrors();
        foreach (var r in rows)
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| TP{r.Tp} | {r.Samples} | {r.P50 * 100:F1}% | {r.P90 * 100:F1}% | {r.MeanSigned * 100:+0.0;-0.0}% | {r.MaxP50 * 100:F1}% |"));
        Assert.Equal(2, rows.Count);
        Assert.All(rows, r => Assert.True(r.P50 < 0.08 && r.P50 < r.MaxP50, "summed KV should beat pricing every sequence at the longest one"));
    }
}
