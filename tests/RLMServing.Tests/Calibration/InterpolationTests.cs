using FsCheck.Xunit;
using RLMServing.Calibration;
using RLMServing.Costs;
using Xunit;

namespace RLMServing.Tests.Calibration;

public class InterpolationTests
{
    private static readonly IterationCoefficients Truth = new(5000, 20, 150, 0.01, 0.001);

    /// <summary>A grid of prefills and decodes whose times deviate from the linear truth by a wobble the regression cannot express.</summary>
    private static List<CalibrationSample> Wobbly(IterationCoefficients truth, Func<int, double, double> wobble)
    {
        var samples = new List<CalibrationSample>();
        foreach (int batch in new[] { 1, 4, 16, 64 })
            foreach (long length in new[] { 256L, 1024, 4096, 16384 })
            {
                var d = CalibrationSample.Decode(batch, length, 1);
                samples.Add(d with { TimeUs = truth.PredictUs(d.Features) * wobble(batch, length) });
                int pb = Math.Min(batch, 8);
                var p = CalibrationSample.Prefill(pb, length / 4, 1);
                samples.Add(p with { TimeUs = truth.PredictUs(p.Features) * wobble(pb, length / 4) });
            }
        return samples;
    }

    private static double Wobble(int batch, double length) => 1 + 0.15 * Math.Sin(batch * 0.7 + Math.Log(length) * 1.3);

    [Fact]
    public void InterpolationIsExactOnGridPoints()
    {
        var samples = Wobbly(Truth, Wobble);
        var model = ResidualFit.Model(samples);
        Assert.True(IterationFitter.Fit(samples).Quality.Mape > 0.02);   // the regression alone cannot reproduce them
        foreach (var s in samples)
            Assert.Equal(s.TimeUs, ResidualFit.Predict(model, s), s.TimeUs * 1e-9);
    }

    [Fact]
    public void InterpolatedModelRecoversAKnownLinearModelEverywhere()
    {
        var model = ResidualFit.Model(Wobbly(Truth, (_, _) => 1));
        foreach (var (batch, length) in new[] { (3, 700.0), (100, 50_000.0), (1, 100.0), (256, 131_072.0) })
        {
            var f = IterationFeatures.Decode(batch, batch * length);
            Assert.Equal(Truth.PredictUs(f), model.PredictUs(f, "decode", batch, length), Truth.PredictUs(f) * 1e-6);
        }
        var chunk = new BatchShape(new[] { new PrefillChunk(3000, 0, true) }, 0, 0);
        Assert.Equal(Truth.PredictUs(IterationFeatures.Of(chunk)), model.PredictUs(chunk), 1e-3);
    }

    [Fact]
    public void HeldOutErrorOfTheInterpolationBeatsTheRegressionOnSmoothDeviations()
    {
        var samples = Wobbly(Truth, (b, l) => 1 + 0.2 * Math.Log(l) / Math.Log(16384) * Math.Log(b + 1) / Math.Log(65));
        var held = ResidualFit.LeaveOneOut(samples);
        Assert.True(held.LeaveOneOutMape < IterationFitter.Fit(samples).Quality.LeaveOneOutMape);
        Assert.Equal(new[] { "decode", "prefill" }, held.LeaveOneOutByPhase.Keys.Order());
    }

    /// <summary>Beyond the largest measured length or batch, predictions never fall as context, tokens or batch grow.</summary>
    [Property(MaxTest = 60)]
    public void ExtrapolationIsMonotoneInTokensContextAndBatch(int seed)
    {
        var rng = new Random(seed);
        var truth = new IterationCoefficients(rng.Next(100, 9000), rng.NextDouble() * 30, rng.NextDouble() * 200, rng.NextDouble() * 0.02, rng.NextDouble() * 0.002);
        var model = ResidualFit.Model(Wobbly(truth, (_, _) => 0.5 + rng.NextDouble()));
        double previous = 0;
        foreach (double length in new[] { 16_384.0, 20_000, 32_768, 65_536, 131_072, 1_000_000 })
        {
            double t = model.PredictDecodeUs(40, 40 * length);
            Assert.True(t >= previous - 1e-9, $"decode at {length}: {t} < {previous}");
            Assert.True(t > 0);
            previous = t;
        }
        previous = 0;
        foreach (int batch in new[] { 64, 100, 256, 1024 })
        {
            double t = model.PredictDecodeUs(batch, batch * 2000.0);
            Assert.True(t >= previous - 1e-9, $"decode batch {batch}: {t} < {previous}");
            previous = t;
        }
        previous = 0;
        foreach (int tokens in new[] { 4096, 8192, 32_768, 131_072 })
        {
            double t = model.PredictUs(new BatchShape(new[] { new PrefillChunk(tokens, 0, true) }, 0, 0));
            Assert.True(t >= previous - 1e-9, $"prefill {tokens}: {t} < {previous}");
            previous = t;
        }
    }

    [Fact]
    public void FarBeyondTheGridTheCorrectionFadesToTheRegression()
    {
        var samples = Wobbly(Truth, (_, length) => length >= 16384 ? 1.4 : 1);   // measured slower at the grid's edge
        var model = ResidualFit.Model(samples);
        double Share(double length)
        {
            var f = IterationFeatures.Decode(16, 16 * length);
            return model.PredictUs(f, "decode", 16, length) / model.Coefficients.PredictUs(f) - 1;
        }
        Assert.True(Share(16384) > 0.05, $"{Share(16384)}");
        Assert.True(Share(131_072) < Share(32_768));
        Assert.True(Share(10_000_000) < Share(16384) / 10);
    }

    [Fact]
    public void ResidualTableMergesRepeatedPointsAndFillsRowsAlongLength()
    {
        var t = ResidualTable.FromPoints([(1, 100, 1.0), (1, 100, 4.0), (1, 400, 1.0), (2, 200, 3.0)]);
        Assert.Equal(new[] { 1.0, 2.0 }, t.Batch);
        Assert.Equal(new[] { 100.0, 200.0, 400.0 }, t.Length);
        Assert.Equal(2.0, t.Ratio[0][0], 1e-12);                      // geometric mean of 1 and 4
        Assert.Equal(Math.Sqrt(2.0), t.Ratio[0][1], 1e-12);           // halfway in log length between 2 and 1
        Assert.All(t.Ratio[1], r => Assert.Equal(3.0, r, 1e-12));     // a single point fills its row
        Assert.Null(t.Problem());
        Assert.NotNull((t with { Length = [200, 100, 400] }).Problem());
    }
}
