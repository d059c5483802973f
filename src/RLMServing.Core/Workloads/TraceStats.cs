namespace RLMServing.Workloads;

/// <summary>Mean, percentiles and maximum of one token column of a request trace.</summary>
public sealed record TokenSummary(double Mean, double P50, double P90, double P99, long Max);

/// <summary>
/// Summary of a request trace, as printed by <c>rlms trace stats</c>. Definitions are in docs/request-traces.md:
/// duration = last arrival − first arrival; mean rate = rows / duration; inter-arrival CV = population standard
/// deviation / mean of the gaps between consecutive arrivals; percentiles interpolate linearly between order
/// statistics (the numpy / pandas default).
/// </summary>
public sealed record TraceStats(
    long Rows,
    double DurationS,
    double MeanRate,
    double InterarrivalCv,
    TokenSummary PromptTokens,
    TokenSummary OutputTokens,
    TokenSummary? ThinkingTokens);

/// <summary>
/// Streams rows into exact trace statistics. Token columns are kept as value → count histograms, so memory grows
/// with the number of distinct token counts, not with rows, and percentiles are still exact.
/// </summary>
public sealed class TraceStatsAccumulator
{
    private readonly CountHistogram _prompt = new(), _output = new(), _thinking = new();
    private long _rows;
    private double _first = double.NaN, _last = double.NaN, _min = double.PositiveInfinity, _max = double.NegativeInfinity;
    // Welford running mean / variance of inter-arrival gaps.
    private long _gaps;
    private double _gapMean, _gapM2;

    public long Rows => _rows;

    public void Add(double arrivalTimeS, int promptTokens, int outputTokens, int? thinkingTokens)
    {
        if (_rows > 0)
        {
            double gap = arrivalTimeS - _last;
            _gaps++;
            double delta = gap - _gapMean;
            _gapMean += delta / _gaps;
            _gapM2 += delta * (gap - _gapMean);
        }
        else _first = arrivalTimeS;
        _last = arrivalTimeS;
        _min = Math.Min(_min, arrivalTimeS);
        _max = Math.Max(_max, arrivalTimeS);
        _rows++;
        _prompt.Add(promptTokens);
        _output.Add(outputTokens);
        if (thinkingTokens is int t) _thinking.Add(t);
    }

    public TraceStats Build()
    {
        double duration = _rows == 0 ? 0 : _max - _min;
        double rate = duration > 0 ? _rows / duration : 0;
        double cv = _gaps > 0 && _gapMean > 0 ? Math.Sqrt(_gapM2 / _gaps) / _gapMean : 0;
        return new TraceStats(_rows, duration, rate, cv, _prompt.Summary(), _output.Summary(),
            _thinking.Count > 0 ? _thinking.Summary() : null);
    }
}

/// <summary>Exact histogram of non-negative integers with linear-interpolation quantiles.</summary>
public sealed class CountHistogram
{
    // Token counts below this are counted in an array (the common case, and much faster than a dictionary).
    private const int DenseLimit = 1 << 17;
    private readonly Dictionary<long, long> _counts = [];
    private long[]? _dense;
    private double _sum;

    public long Count { get; private set; }

    public void Add(long value)
    {
        if ((ulong)value < DenseLimit) (_dense ??= new long[DenseLimit])[value]++;
        else _counts[value] = _counts.GetValueOrDefault(value) + 1;
        _sum += value;
        Count++;
    }

    private KeyValuePair<long, long>[] Sorted()
    {
        var all = new List<KeyValuePair<long, long>>();
        if (_dense is not null)
            for (int v = 0; v < _dense.Length; v++)
                if (_dense[v] > 0) all.Add(new(v, _dense[v]));
        all.AddRange(_counts.OrderBy(kv => kv.Key));
        return [.. all];
    }

    public TokenSummary Summary()
    {
        if (Count == 0) return new TokenSummary(0, 0, 0, 0, 0);
        var sorted = Sorted();
        return new TokenSummary(_sum / Count, Quantile(sorted, 0.5), Quantile(sorted, 0.9), Quantile(sorted, 0.99), sorted[^1].Key);
    }

    public double Quantile(double q)
    {
        if (Count == 0) return 0;
        return Quantile(Sorted(), q);
    }

    private double Quantile(KeyValuePair<long, long>[] sorted, double q)
    {
        double h = (Count - 1) * q;
        long lo = (long)Math.Floor(h);
        double frac = h - lo;
        long vLo = ValueAtRank(sorted, lo);
        if (frac == 0) return vLo;
        long vHi = ValueAtRank(sorted, lo + 1);
        return vLo + frac * (vHi - vLo);
    }

    // Zero-based rank in the sorted multiset.
    private static long ValueAtRank(KeyValuePair<long, long>[] sorted, long rank)
    {
        long seen = 0;
        foreach (var (value, count) in sorted)
        {
            seen += count;
            if (rank < seen) return value;
        }
        return sorted[^1].Key;
    }
}
