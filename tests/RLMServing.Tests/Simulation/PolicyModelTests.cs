using RLMServing.Calibration;
using RLMServing.Costs;
using RLMServing.Policies;
using Xunit;

namespace RLMServing.Tests.Simulation;

/// <summary>The policies' formulas: speculative cost and acceptance, compression targets and scoring, budgets, curves.</summary>
public class PolicyModelTests
{
    private static readonly RLMServing.Catalog.ModelArchitecture Qwen7B = TestScenarios.Catalog.Model("DeepSeek-R1-Distill-Qwen-7B");
    private static readonly RLMServing.Catalog.ModelArchitecture Qwen1_5B = TestScenarios.Catalog.Model("DeepSeek-R1-Distill-Qwen-1.5B");
    private static readonly RLMServing.Catalog.GpuSpec H100 = TestScenarios.Catalog.Gpu("H100-SXM-80G");

    private static RooflineCostModel Roofline(RLMServing.Catalog.ModelArchitecture m) => new(m, H100, 1, 0.6, 0.85, 1.0, 10);

    private static SpeculativeConfig Spec(SpeculativeMethod method, int k, double a, double fraction = 0.1) =>
        new(method, method == SpeculativeMethod.Draft ? Qwen1_5B.Name : null, k, a, fraction, "test");

    /// <summary>Time per emitted token relative to plain decoding, at batch <paramref name="b"/> with 2,000-token contexts.</summary>
    private static double RelativeTimePerToken(ICostModel spec, SpeculativeConfig c, int b) =>
        spec.Decode(b, b * 2_000L).TimeS / c.ExpectedTokensPerStep / Roofline(Qwen7B).Decode(b, b * 2_000L).TimeS;

    [Fact]
    public void SpeculativeGainShrinksAsBatchesGrow()
    {
        foreach (var c in new[] { Spec(SpeculativeMethod.Draft, 2, 0.65), Spec(SpeculativeMethod.Eagle, 3, 0.7), Spec(SpeculativeMethod.Ngram, 3, 0.35) })
        {
            var model = new SpeculativeCostModel(Roofline(Qwen7B), c.Method == SpeculativeMethod.Draft ? Roofline(Qwen1_5B) : null, c);
            double small = RelativeTimePerToken(model, c, 1), large = RelativeTimePerToken(model, c, 256);
            Assert.True(small < 0.95, $"{c.Method}: batch 1 should gain, got {small:F3} of plain decoding per token");
            Assert.True(large > small + 0.1, $"{c.Method}: batch 256 ({large:F3}) should gain much less than batch 1 ({small:F3})");
        }
    }

    [Fact]
    public void VerificationFeedsKPlusOneTokensButReadsTheKvOnce()
    {
        var m = Roofline(Qwen7B);
        var plain = m.Decode(64, 64 * 1000);
        var verify = m.Iteration(BatchShape.DecodeOnly(64, 64 * 1000) with { SpeculativeTokens = 3 });
        var fourTimes = m.Iteration(BatchShape.DecodeOnly(256, 4 * 64 * 1000));
        Assert.True(verify.Flops > 3.5 * plain.Flops && verify.Flops < 4.5 * plain.Flops);
        Assert.True(verify.Bytes < fourTimes.Bytes, "the cached KV is read once per request, not once per verified token");
        // Ngram drafting is one host-side lookup per step: the verification pass plus the lookup constant.
        var ngram = new SpeculativeCostModel(m, null, Spec(SpeculativeMethod.Ngram, 3, 0.4));
        Assert.Equal(verify.TimeS + SpeculativeConfig.NgramLookupMs / 1000, ngram.Decode(64, 64 * 1000).TimeS, 12);
        Assert.Equal(verify.Flops, ngram.Decode(64, 64 * 1000).Flops);
    }

    /// <summary>
    /// An EAGLE draft step is a forward pass of its own: a fraction of the target's variable decode cost plus the
    /// cost model's whole fixed term (roofline: step_overhead_ms; calibrated: the fitted intercept), or the override.
    /// </summary>
    [Fact]
    public void EagleDraftStepsPayTheCostModelsFixedTerm()
    {
        var roofline = Roofline(Qwen7B);
        var calibrated = new CalibratedCostModel(new IterationCoefficients(2500, 40, 30, 0.002, 0), roofline);
        foreach (ICostModel target in new ICostModel[] { roofline, calibrated })
        {
            var c = Spec(SpeculativeMethod.Eagle, 3, 0.7, fraction: 0.1);
            var verify = target.Iteration(BatchShape.DecodeOnly(4, 8000) with { SpeculativeTokens = 3 }).TimeS;
            double plain = target.Decode(4, 8000).TimeS, fixedS = target.FixedStepS;
            Assert.True(fixedS > 0);
            Assert.Equal(verify + 3 * (0.1 * (plain - fixedS) + fixedS), new SpeculativeCostModel(target, null, c).Decode(4, 8000).TimeS, 12);
            var overridden = new SpeculativeCostModel(target, null, c with { DraftStepOverheadMs = 0.25 });
            Assert.Equal(verify + 3 * (0.1 * (plain - fixedS) + 0.25e-3), overridden.Decode(4, 8000).TimeS, 12);
        }
        Assert.Equal(2.5e-3, calibrated.FixedStepS, 15);
        Assert.Equal(1e-3, roofline.FixedStepS, 15);
    }

    [Fact]
    public void DraftModelAddsKDraftStepsAndItsPrefill()
    {
        var target = Roofline(Qwen7B);
        var draft = Roofline(Qwen1_5B);
        var c = Spec(SpeculativeMethod.Draft, 4, 0.6);
        var m = new SpeculativeCostModel(target, draft, c);
        double expected = target.Iteration(BatchShape.DecodeOnly(8, 8000) with { SpeculativeTokens = 4 }).TimeS + 4 * draft.Decode(8, 8000).TimeS;
        Assert.Equal(expected, m.Decode(8, 8000).TimeS, 12);
        var prefill = new BatchShape(new[] { new PrefillChunk(500, 0, true) }, 0, 0);
        Assert.Equal(target.Iteration(prefill).TimeS + draft.Iteration(prefill).TimeS, m.Iteration(prefill).TimeS, 12);
    }

    [Fact]
    public void AcceptedLengthsFollowTheTruncatedGeometric()
    {
        foreach (var (k, a) in new[] { (2, 0.65), (4, 0.8), (3, 0.3) })
        {
            const int n = 200_000;
            double sum = 0;
            for (int i = 0; i < n; i++) sum += SpeculativeAcceptance.AcceptedDraftTokens(7, i % 97, i / 97, k, a);
            double expected = (1 - Math.Pow(a, k + 1)) / (1 - a) - 1;   // drafts accepted per step
            Assert.InRange(sum / n, expected - 0.015, expected + 0.015);   // ~4 standard errors at n = 200,000
            Assert.Equal(expected + 1, Spec(SpeculativeMethod.Ngram, k, a).ExpectedTokensPerStep, 12);
        }
        Assert.Equal(SpeculativeAcceptance.AcceptedDraftTokens(1, 5, 9, 4, 0.5), SpeculativeAcceptance.AcceptedDraftTokens(1, 5, 9, 4, 0.5));
    }

    [Fact]
    public void CompressionScoringIsPricedInRooflineAndCalibratedModels()
    {
        var m = Roofline(Qwen7B);
        var shape = BatchShape.DecodeOnly(16, 16_000);
        var scored = shape with { ScoringPairs = 32L * 8_000, ScoringKvTokens = 8_000 };
        Assert.True(m.Iteration(scored).TimeS > m.Iteration(shape).TimeS);
        Assert.Equal(m.Iteration(shape).TimeS + m.Scoring(scored).TimeS, m.Iteration(scored).TimeS, 12);
        var calibrated = new CalibratedCostModel(new IterationCoefficients(1000, 1, 1, 0.01, 0), m);
        Assert.Equal(calibrated.Iteration(shape).TimeS + m.Scoring(scored).TimeS, calibrated.Iteration(scored).TimeS, 12);
    }

    [Fact]
    public void CompressionTargetsFollowThePolicy()
    {
        var budget = new CompressionConfig(CompressionPolicy.Rkv, 1024, 1, 128, 32, null);
        Assert.Equal(1024, budget.TargetOutputKv(5000, 4500, 500));
        Assert.Equal(800, budget.TargetOutputKv(800, 800, 0));   // never grows a request
        var ratio = new CompressionConfig(CompressionPolicy.Ratio, 0, 0.25, 128, 32, null);
        Assert.Equal(250 + 100, ratio.TargetOutputKv(1100, 1000, 100));   // a quarter of the thinking, all of the answer
        Assert.Equal(0, new CompressionConfig(CompressionPolicy.Streaming, 512, 1, 16, 0, null).ScoringPairs(4000, 512));
        Assert.True(budget.ScoringPairs(4000, 1024) > new CompressionConfig(CompressionPolicy.Budget, 1024, 1, 128, 32, null).ScoringPairs(4000, 1024));
    }

    [Fact]
    public void AdaptiveBudgetsShrinkWithTheQueueAndComeBack()
    {
        var tb = new ThinkingBudgetConfig(ThinkingBudgetPolicy.Adaptive, 16384, 1024, 8, null);
        Assert.Equal(16384, tb.BudgetFor(0));
        Assert.Equal(8192, tb.BudgetFor(8));
        Assert.Equal(1024, tb.BudgetFor(10_000));
        Assert.True(tb.BudgetFor(20) < tb.BudgetFor(4));
        Assert.Equal(4096, new ThinkingBudgetConfig(ThinkingBudgetPolicy.Static, 4096, 0, 1, null).BudgetFor(500));
        Assert.Null(new ThinkingBudgetConfig(ThinkingBudgetPolicy.None, null, 0, 1, null).BudgetFor(3));
    }

    [Fact]
    public void QualityCurvesInterpolateAndStayFlatOutsideTheirPoints()
    {
        var q = new QualityEstimate([(1000, 0.4), (2000, 0.6), (4000, 0.7)], null, "test");
        Assert.Equal(0.4, q.At(10));
        Assert.Equal(0.5, q.At(1500), 12);
        Assert.Equal(0.7, q.At(1e6));
        Assert.Equal(0.7, q.Unlimited);
        Assert.Equal(0.9, QualityEstimate.Constant(0.9, "set").At(5));
    }
}
