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

/// <summary>
/// The sketch keeps its buckets in a dense array (for speed); its quantiles must equal, bit for bit, those of the
/// same sketch over a dictionary of buckets (the reference below), for weighted samples over a wide range, zeros,
/// and merges in both directions.
/// </summary>
public class QuantileSketchBucketTests
{
    [FsCheck.Xunit.Property(MaxTest = 200)]
    public void DenseBucketsGiveTheQuantilesOfDictionaryBuckets(int seed)
    {
        var rng = new Random(seed);
        var a = new QuantileSketch(0.005);
        var b = new QuantileSketch(0.005);
        var refA = new ReferenceSketch(0.005);
        var refB = new ReferenceSketch(0.005);
        int n = rng.Next(1, 3000);
        double scale = Math.Pow(10, rng.Next(-6, 7));
        for (int i = 0; i < n; i++)
        {
            double v = rng.Next(20) == 0 ? 0 : Math.Exp(rng.NextDouble() * rng.Next(1, 20)) * scale;
            double w = rng.Next(3) == 0 ? rng.Next(1, 500) : 1;
            if (i % 3 == 0) { b.Add(v, w); refB.Add(v, w); }
            else { a.Add(v, w); refA.Add(v, w); }
        }
        if (seed % 2 == 0) { a.Merge(b); refA.Merge(refB); }
        else { b.Merge(a); refB.Merge(refA); (a, refA) = (b, refB); }
        foreach (var q in new[] { 0.0, 0.01, 0.1, 0.5, 0.9, 0.99, 0.999, 1.0 })
            Assert.Equal(refA.Quantile(q), a.Quantile(q));
        Assert.Throws<ArgumentOutOfRangeException>(() => a.Add(double.PositiveInfinity));
    }

    /// <summary>The previous bucket store: a dictionary from bucket key to weight, walked in key order.</summary>
    private sealed class ReferenceSketch(double accuracy)
    {
        private readonly double _gamma = (1 + accuracy) / (1 - accuracy);
        private readonly Dictionary<int, double> _buckets = new();
        private double _zero, _weight, _min = double.PositiveInfinity, _max = double.NegativeInfinity;
        private int _lastKey = int.MinValue;
        private double _lastLow = double.PositiveInfinity, _lastHigh = double.NegativeInfinity;

        public void Add(double value, double weight)
        {
            _weight += weight;
            _max = Math.Max(_max, value);
            _min = Math.Min(_min, value);
            if (value < 1e-12) { _zero += weight; return; }
            int key;
            if (value > _lastLow && value <= _lastHigh) key = _lastKey;
            else
            {
                key = (int)Math.Ceiling(Math.Log(value) / Math.Log(_gamma));
                _lastKey = key;
                _lastHigh = Math.Pow(_gamma, key);
                _lastLow = _lastHigh / _gamma;
            }
            _buckets[key] = _buckets.GetValueOrDefault(key) + weight;
        }

        public void Merge(ReferenceSketch other)
        {
            _weight += other._weight;
            _zero += other._zero;
            _min = Math.Min(_min, other._min);
            _max = Math.Max(_max, other._max);
            foreach (var (k, w) in other._buckets) _buckets[k] = _buckets.GetValueOrDefault(k) + w;
        }

        public double Quantile(double q)
        {
            double rank = q * _weight, acc = _zero;
            if (rank < acc) return 0;
            foreach (var key in _buckets.Keys.Order())
            {
                acc += _buckets[key];
                if (acc >= rank) return Math.Clamp(2 * Math.Pow(_gamma, key) / (_gamma + 1), _min, _max);
            }
            return _max;
        }
    }
}
