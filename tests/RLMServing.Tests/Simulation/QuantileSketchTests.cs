using MathNet.Numerics.Statistics;
using RLMServing.Metrics;
using Xunit;

namespace RLMServing.Tests.Simulation;

public class QuantileSketchTests
{
    [Fact]
    public void QuantilesAreWithinTheRelativeAccuracy()
    {
        var rng = new Random(1);
        var values = Enumerable.Range(0, 50_000).Select(_ => Math.Exp(rng.NextDouble() * 6)).ToArray();
        var sketch = new QuantileSketch(0.005);
        foreach (var v in values) sketch.Add(v);
        foreach (var q in new[] { 0.01, 0.5, 0.9, 0.99 })
        {
            double exact = values.Quantile(q);
            Assert.InRange(sketch.Quantile(q), exact * 0.985, exact * 1.015);
        }
        Assert.Equal(values.Average(), sketch.Mean, 6);
        Assert.Equal(values.PopulationStandardDeviation(), sketch.Std, 4);
    }

    [Fact]
    public void WeightsCountAsRepeatedSamples()
    {
        var a = new QuantileSketch();
        var b = new QuantileSketch();
        a.Add(10, 3); a.Add(20, 1);
        b.Add(10); b.Add(10); b.Add(10); b.Add(20);
        Assert.Equal(b.Mean, a.Mean, 12);
        Assert.Equal(b.Quantile(0.5), a.Quantile(0.5));
        Assert.Equal(b.Quantile(0.9), a.Quantile(0.9));
    }

    [Fact]
    public void MergeEqualsAddingEverything()
    {
        var rng = new Random(2);
        var all = new QuantileSketch();
        var left = new QuantileSketch();
        var right = new QuantileSketch();
        for (int i = 0; i < 1000; i++)
        {
            double v = rng.NextDouble() * 100;
            all.Add(v);
            (i % 2 == 0 ? left : right).Add(v);
        }
        left.Merge(right);
        Assert.Equal(all.Quantile(0.99), left.Quantile(0.99));
        Assert.Equal(all.Mean, left.Mean, 9);
    }
}
