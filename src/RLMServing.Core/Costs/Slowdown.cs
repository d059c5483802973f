namespace RLMServing.Costs;

/// <summary>
/// The machine's speed over a run, as a factor on every priced iteration (<c>cost_model.slowdown</c>): at 1 an
/// iteration takes what the cost model says; at 1.2, starting at a time when the factor is 1.2, it takes 20% longer.
/// Piecewise linear between its knots and constant before the first and after the last, so a single knot is a constant
/// factor. A calibration prices the machine at its average speed over the profile; a machine whose speed drifts
/// (a shared VM, a GPU that throttles or shares its host) runs some stretches slower and some faster, and its queue
/// grows in the slow ones — a measured slowdown curve (an interleaved profile's visits, docs/fidelity.md) plays that
/// into the simulation, and a hand-written one asks what a slow spell would do.
/// </summary>
public sealed class Slowdown
{
    private readonly double[] _timesS;
    private readonly double[] _factors;

    /// <param name="timesS">Knot times on the run's clock (arrivals' time 0), strictly increasing.</param>
    /// <param name="factors">The factor at each knot, finite and greater than 0.</param>
    public Slowdown(IReadOnlyList<double> timesS, IReadOnlyList<double> factors)
    {
        if (timesS.Count == 0) throw new ArgumentException("a slowdown needs at least one knot", nameof(timesS));
        if (timesS.Count != factors.Count) throw new ArgumentException($"{timesS.Count} times but {factors.Count} factors", nameof(factors));
        for (int i = 0; i < timesS.Count; i++)
        {
            if (!double.IsFinite(timesS[i])) throw new ArgumentException($"knot {i}: time {timesS[i]} is not finite", nameof(timesS));
            if (i > 0 && !(timesS[i] > timesS[i - 1])) throw new ArgumentException($"knot {i}: times must increase ({timesS[i - 1]} then {timesS[i]})", nameof(timesS));
            if (!(factors[i] > 0) || !double.IsFinite(factors[i])) throw new ArgumentException($"knot {i}: factor {factors[i]} must be finite and greater than 0", nameof(factors));
        }
        _timesS = timesS.ToArray();
        _factors = factors.ToArray();
    }

    /// <summary>The same factor all run long.</summary>
    public static Slowdown Constant(double factor) => new([0.0], [factor]);

    /// <summary>
    /// A curve through measured samples (time, factor): the samples are grouped into windows of
    /// <paramref name="windowS"/> seconds from time 0, and each window with samples becomes one knot at its samples'
    /// mean time with their mean factor. A window of 0 keeps every sample (samples at the same time averaged).
    /// </summary>
    public static Slowdown FromSamples(IEnumerable<(double TimeS, double Factor)> samples, double windowS)
    {
        if (!(windowS >= 0) || !double.IsFinite(windowS)) throw new ArgumentOutOfRangeException(nameof(windowS), windowS, "must be finite and at least 0");
        var groups = samples
            .GroupBy(s => windowS > 0 ? Math.Floor(s.TimeS / windowS) : s.TimeS)
            .OrderBy(g => g.Key)
            .Select(g => (TimeS: g.Average(s => s.TimeS), Factor: g.Average(s => s.Factor)))
            .ToList();
        if (groups.Count == 0) throw new ArgumentException("no samples", nameof(samples));
        return new Slowdown(groups.Select(g => g.TimeS).ToList(), groups.Select(g => g.Factor).ToList());
    }

    public IReadOnlyList<double> TimesS => _timesS;
    public IReadOnlyList<double> Factors => _factors;

    /// <summary>The factor at time <paramref name="timeS"/>.</summary>
    public double At(double timeS)
    {
        if (timeS <= _timesS[0]) return _factors[0];
        int last = _timesS.Length - 1;
        if (timeS >= _timesS[last]) return _factors[last];
        int i = Array.BinarySearch(_timesS, timeS);
        if (i >= 0) return _factors[i];
        int hi = ~i, lo = hi - 1;   // _timesS[lo] < timeS < _timesS[hi]
        double w = (timeS - _timesS[lo]) / (_timesS[hi] - _timesS[lo]);
        return _factors[lo] + w * (_factors[hi] - _factors[lo]);
    }

    /// <summary>The factor's time average over [<paramref name="fromS"/>, <paramref name="toS"/>] (exact for the piecewise-linear curve).</summary>
    public double MeanOver(double fromS, double toS)
    {
        if (!(toS > fromS)) return At(fromS);
        // Integrate the piecewise-linear curve: trapezoids between the knots inside the range and its ends.
        var points = new List<double> { fromS };
        points.AddRange(_timesS.Where(t => t > fromS && t < toS));
        points.Add(toS);
        double area = 0;
        for (int i = 1; i < points.Count; i++) area += (points[i] - points[i - 1]) * (At(points[i]) + At(points[i - 1])) / 2;
        return area / (toS - fromS);
    }
}
