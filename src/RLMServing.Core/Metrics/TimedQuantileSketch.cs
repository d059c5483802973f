namespace RLMServing.Metrics;

/// <summary>
/// Quantile sketches of samples by the simulated time they were taken, so that the inter-token latencies of a time
/// window known only after the run (the steady window) can still be read. Time from 0 is cut into at most
/// <see cref="MaxBuckets"/> equal buckets, each its own <see cref="QuantileSketch"/>; when a sample lies beyond the last,
/// the width doubles and neighbouring buckets merge. Memory is therefore bounded whatever the run's length (never one
/// sketch per second of idle time), and a window is resolved to between 1/64 and 1/32 of the time covered.
/// Widths are a power of two times <see cref="BaseWidthS"/>, so the buckets of two sketches (two replicas) nest and
/// merge exactly.
/// </summary>
public sealed class TimedQuantileSketch(double relativeAccuracy = 0.005)
{
    public const int MaxBuckets = 64;
    public const double BaseWidthS = 1.0 / 16;

    private QuantileSketch?[] _buckets = new QuantileSketch?[MaxBuckets];
    private double _width = BaseWidthS;
    // The bucket the last sample went into: the samples of a decode stretch come in time order and mostly land there.
    private QuantileSketch? _current;
    private double _currentStart = double.PositiveInfinity, _currentEnd = double.NegativeInfinity;

    public double WidthS => _width;

    public double Count => _buckets.Sum(b => b?.Count ?? 0);

    public void Add(double timeS, double value, double weight = 1)
    {
        if (weight <= 0) return;
        if (timeS >= _currentStart && timeS < _currentEnd)
        {
            _current!.Add(value, weight);
            return;
        }
        if (!double.IsFinite(timeS)) throw new ArgumentOutOfRangeException(nameof(timeS), "sample times are finite");
        double t = Math.Max(0, timeS);
        while (t >= _width * MaxBuckets) Coarsen();
        int i = Math.Min((int)(t / _width), MaxBuckets - 1);
        var bucket = _buckets[i] ??= new QuantileSketch(relativeAccuracy);
        bucket.Add(value, weight);
        _current = bucket;
        _currentStart = i * _width;
        _currentEnd = (i + 1) * _width;
    }

    /// <summary>Doubles the bucket width: bucket i of the new array is buckets 2i and 2i+1 of the old.</summary>
    private void Coarsen()
    {
        var wider = new QuantileSketch?[MaxBuckets];
        for (int i = 0; i < MaxBuckets; i++)
        {
            if (_buckets[i] is not { } b) continue;
            if (wider[i / 2] is { } into) into.Merge(b);
            else wider[i / 2] = b;
        }
        _buckets = wider;
        _width *= 2;
        _current = null;
        _currentStart = double.PositiveInfinity;
        _currentEnd = double.NegativeInfinity;
    }

    /// <summary>Adds another's samples (another replica's): the finer of the two is read at the coarser width.</summary>
    public void Merge(TimedQuantileSketch other)
    {
        while (_width < other._width) Coarsen();
        for (int j = 0; j < MaxBuckets; j++)
        {
            if (other._buckets[j] is not { } b) continue;
            int i = (int)(j * (other._width / _width));
            (_buckets[i] ??= new QuantileSketch(relativeAccuracy)).Merge(b);
        }
    }

    /// <summary>All the samples, whatever their time.</summary>
    public QuantileSketch All()
    {
        var merged = new QuantileSketch(relativeAccuracy);
        foreach (var b in _buckets)
            if (b is not null) merged.Merge(b);
        return merged;
    }

    /// <summary>
    /// The samples of the buckets whose middle lies in [<paramref name="startS"/>, <paramref name="endS"/>]: the window to
    /// within half a bucket at each end. A window inside one or two buckets (a run that starts late, so that the
    /// buckets from 0 are wide against it) takes the buckets it overlaps. Null when no sample falls there.
    /// </summary>
    public QuantileSketch? Between(double startS, double endS)
    {
        var merged = new QuantileSketch(relativeAccuracy);
        bool anyMiddle = false;
        for (int i = 0; i < MaxBuckets; i++)
        {
            double middle = (i + 0.5) * _width;
            if (middle < startS || middle > endS) continue;
            anyMiddle = true;
            if (_buckets[i] is { } b) merged.Merge(b);
        }
        if (!anyMiddle)
            for (int i = 0; i < MaxBuckets; i++)
                if (_buckets[i] is { } b && (i + 1) * _width > startS && i * _width <= endS) merged.Merge(b);
        return merged.Count > 0 ? merged : null;
    }
}
