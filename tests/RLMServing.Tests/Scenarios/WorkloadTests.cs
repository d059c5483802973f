using FsCheck.Xunit;
using RLMServing.Workloads;
using Xunit;

namespace RLMServing.Tests.Scenarios;

public class WorkloadTests
{
    [Fact]
    public void LogNormalHasTheRequestedMedian()
    {
        var d = new LogNormalTokens(600, 0.5);
        var rng = new Random(3);
        var xs = Enumerable.Range(0, 20_000).Select(_ => (double)d.Sample(rng)).OrderBy(x => x).ToList();
        Assert.InRange(xs[xs.Count / 2], 585, 615);
    }

    [Fact]
    public void MixtureIsBimodalWithTheGivenWeights()
    {
        var d = new MixtureTokens([(0.6, new ConstantTokens(10)), (0.4, new ConstantTokens(1000))]);
        var rng = new Random(4);
        var xs = Enumerable.Range(0, 20_000).Select(_ => d.Sample(rng)).ToList();
        Assert.InRange(xs.Count(x => x == 10) / 20_000.0, 0.58, 0.62);
        Assert.Equal(0.6 * 10 + 0.4 * 1000, d.Mean, 9);
    }

    [Theory]
    [InlineData(4.0, 1.0)]
    [InlineData(4.0, 0.3)]
    [InlineData(10.0, 3.0)]
    public void GammaArrivalsKeepTheRateAndSetTheBurstiness(double rate, double burstiness)
    {
        var a = new GammaArrivals(rate, burstiness);
        var rng = new Random(5);
        var gaps = Enumerable.Range(0, 40_000).Select(_ => a.NextGapS(rng)).ToList();
        double mean = gaps.Average();
        double cv = Math.Sqrt(gaps.Average(g => (g - mean) * (g - mean))) / mean;
        Assert.InRange(1 / mean, rate * 0.97, rate * 1.03);
        Assert.InRange(cv, 0.95 / Math.Sqrt(burstiness), 1.05 / Math.Sqrt(burstiness));  // CV of gamma = 1/sqrt(shape)
    }

    [Property(MaxTest = 200)]
    public void GeneratedRequestsRespectBoundsAndSeeds(int seed, byte maxOutputByte, byte maxThinkingByte)
    {
        int maxOutput = 1 + maxOutputByte * 10;
        int maxThinking = maxThinkingByte * 5;
        var w = new SyntheticWorkload(50, new PoissonArrivals(3), new Clamped(new LogNormalTokens(300, 1), 1, 4096),
            new LogNormalTokens(2000, 1), 0.85, null, null, maxOutput, maxThinking, null);
        var a = w.Generate(seed);
        Assert.Equal(a, w.Generate(seed));
        Assert.All(a, r =>
        {
            Assert.InRange(r.PromptTokens, 1, 4096);
            Assert.InRange(r.OutputTokens, 1, maxOutput);
            Assert.InRange(r.ThinkingTokens, 0, Math.Min(maxThinking, maxOutput));
            Assert.True(r.AnswerTokens >= 1);
        });
        Assert.True(a.Zip(a.Skip(1)).All(p => p.First.ArrivalTimeS <= p.Second.ArrivalTimeS));
    }

    [Fact]
    public void ChangingLengthsKeepsTheArrivals()
    {
        // Variants that change only output lengths see the same arrivals and prompts (common random numbers).
        var a = new SyntheticWorkload(100, new PoissonArrivals(3), new LogNormalTokens(300, 1), new LogNormalTokens(2000, 1), 0.9, null, null, 32768, null, null);
        var b = a with { OutputTokens = new LogNormalTokens(300, 0.5), ThinkingFraction = 0 };
        Assert.Equal(a.Generate(9).Select(r => (r.ArrivalTimeS, r.PromptTokens)), b.Generate(9).Select(r => (r.ArrivalTimeS, r.PromptTokens)));
    }
}
