namespace RLMServing.Metrics;

/// <summary>
/// A weighted streaming quantile sketch with bounded relative error (logarithmic buckets, as in DDSketch):
/// memory is the range of buckets between the smallest and the largest sample (a few thousand at most for
/// latencies: 0.5% accuracy spans a factor of 10 in about 230 buckets), not the number of samples.
/// Buckets are a dense array indexed by bucket key (an addition per decode iteration: no hashing).
/// Mean and standard deviation are exact running sums.
/// </summary>
public sealed class QuantileSketch
{
    private readonly double _gamma;
    private readonly double _logGamma;
    private double[] _buckets = [];   // weight of bucket key _firstKey + i; 0 where no sample fell
    private int _firstKey;
    private double _zeroWeight;
    private double _weight, _sum, _sumSq;
    private double _max = double.NegativeInfinity, _min = double.PositiveInfinity;
    // The last bucket used: consecutive latencies of a steady decode stretch mostly land in it, skipping the log.
    private int _lastKey = int.MinValue;
    private double _lastLow = double.PositiveInfinity, _lastHigh = double.NegativeInfinity;

    /// <param name="relativeAccuracy">Quantiles are within this relative error of a true sample value.</param>
    public QuantileSketch(double relativeAccuracy = 0.005)
    {
        if (relativeAccuracy is <= 0 or >= 1) throw new ArgumentOutOfRangeException(nameof(relativeAccuracy));
        _gamma = (1 + relativeAccuracy) / (1 - relativeAccuracy);
        _logGamma = Math.Log(_gamma);
    }

    public double Count => _weight;
    public double Mean => _weight > 0 ? _sum / _weight : double.NaN;
    public double Max => _weight > 0 ? _max : double.NaN;
    public double Min => _weight > 0 ? _min : double.NaN;

    /// <summary>Population standard deviation (numpy's default, as vLLM reports it).</summary>
    public double Std => _weight > 0 ? Math.Sqrt(Math.Max(0, _sumSq / _weight - Mean * Mean)) : double.NaN;

    public void Add(double value, double weight = 1)
    {
        if (weight <= 0) return;
        if (value < 0 || !double.IsFinite(value)) throw new ArgumentOutOfRangeException(nameof(value), "latencies are finite and non-negative");
        _weight += weight;
        _sum += value * weight;
        _sumSq += value * value * weight;
        if (value > _max) _max = value;
        if (value < _min) _min = value;
        if (value < 1e-12) { _zeroWeight += weight; return; }
        int key;
        if (value > _lastLow && value <= _lastHigh) key = _lastKey;
        else
        {
            key = (int)Math.Ceiling(Math.Log(value) / _logGamma);
            _lastKey = key;
            _lastHigh = Math.Pow(_gamma, key);
            _lastLow = _lastHigh / _gamma;
        }
        AddToBucket(key, weight);
    }

    private void AddToBucket(int key, double weight)
    {
        int i = key - _firstKey;
        if ((uint)i >= (uint)_buckets.Length) i = Cover(key);
        _buckets[i] += weight;
    }

    /// <summary>Widens the bucket array to include <paramref name="key"/> (with slack on that side); returns its index.</summary>
    private int Cover(int key)
    {
        if (_buckets.Length == 0)
        {
            _buckets = new double[64];
            _firstKey = key - 32;
            return key - _firstKey;
        }
        int first = _firstKey, last = _firstKey + _buckets.Length - 1;
        int slack = Math.Max(64, _buckets.Length / 2);
        if (key < first) first = key - slack;
        else last = key + slack;
        var wider = new double[last - first + 1];
        Array.Copy(_buckets, 0, wider, _firstKey - first, _buckets.Length);
        _buckets = wider;
        _firstKey = first;
        return key - first;
    }

    /// <summary>Adds another sketch of the same accuracy (e.g. from another replica).</summary>
    public void Merge(QuantileSketch other)
    {
        if (Math.Abs(other._gamma - _gamma) > 1e-15) throw new ArgumentException("sketches differ in accuracy");
        _weight += other._weight;
        _sum += other._sum;
        _sumSq += other._sumSq;
        _zeroWeight += other._zeroWeight;
        if (other._weight > 0) { _max = Math.Max(_max, other._max); _min = Math.Min(_min, other._min); }
        for (int i = 0; i < other._buckets.Length; i++)
            if (other._buckets[i] != 0) AddToBucket(other._firstKey + i, other._buckets[i]);
    }

    /// <summary>The q-quantile (0..1); the answer is within the relative accuracy of a sample's value.</summary>
    public double Quantile(double q)
    {
        if (_weight == 0) return double.NaN;
        double rank = q * _weight;
        double acc = _zeroWeight;
        if (rank < acc) return 0;
        for (int i = 0; i < _buckets.Length; i++)
        {
            if (_buckets[i] == 0) continue;   // no sample there: not a bucket a quantile can land in
            acc += _buckets[i];
            if (acc >= rank) return Math.Clamp(2 * Math.Pow(_gamma, _firstKey + i) / (_gamma + 1), _min, _max);
        }
        return _max;
    }
}
