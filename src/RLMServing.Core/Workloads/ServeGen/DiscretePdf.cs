using System.Globalization;

namespace RLMServing.Workloads.ServeGen;

/// <summary>
/// A discrete probability distribution {value → probability}, as ServeGen stores its windowed length and
/// reason-ratio distributions (a Python dict literal such as <c>{45: 0.0096, 46: 0.0117}</c>). Probabilities are
/// normalised on load; zero-probability entries are dropped.
/// </summary>
public sealed class DiscretePdf
{
    private readonly double[] _values;
    private readonly double[] _cumulative;

    public DiscretePdf(IReadOnlyList<(double Value, double Probability)> entries)
    {
        var kept = entries.Where(e => e.Probability > 0).OrderBy(e => e.Value).ToArray();
        _values = kept.Select(e => e.Value).ToArray();
        _cumulative = new double[kept.Length];
        double total = kept.Sum(e => e.Probability);
        double running = 0;
        for (int i = 0; i < kept.Length; i++)
        {
            running += kept[i].Probability / total;
            _cumulative[i] = running;
        }
        if (kept.Length > 0) _cumulative[^1] = 1.0;
    }

    public bool IsEmpty => _values.Length == 0;

    public int Count => _values.Length;

    public double Min => _values[0];

    public double Max => _values[^1];

    public double Mean
    {
        get
        {
            double mean = 0, previous = 0;
            for (int i = 0; i < _values.Length; i++) { mean += _values[i] * (_cumulative[i] - previous); previous = _cumulative[i]; }
            return mean;
        }
    }

    public double Sample(Random random)
    {
        if (IsEmpty) throw new InvalidOperationException("Cannot sample from an empty distribution");
        double u = random.NextDouble();
        int i = Array.BinarySearch(_cumulative, u);
        if (i < 0) i = ~i;
        return _values[Math.Min(i, _values.Length - 1)];
    }

    /// <summary>
    /// Parses a Python dict literal of numbers. Throws <see cref="FormatException"/> whose message starts with the
    /// 1-based character position of the problem.
    /// </summary>
    public static DiscretePdf ParsePythonDict(string text)
    {
        var entries = new List<(double, double)>();
        var span = text.AsSpan();
        int pos = SkipSpace(span, 0);
        if (pos >= span.Length || span[pos] != '{') throw Error(pos, "expected '{' at the start of a Python dict literal");
        pos = SkipSpace(span, pos + 1);
        if (pos < span.Length && span[pos] == '}') return new DiscretePdf(entries);
        while (true)
        {
            double key = ReadNumber(span, ref pos, "key");
            pos = SkipSpace(span, pos);
            if (pos >= span.Length || span[pos] != ':') throw Error(pos, "expected ':' after a key");
            pos = SkipSpace(span, pos + 1);
            double probability = ReadNumber(span, ref pos, "probability");
            if (probability < 0 || double.IsNaN(probability)) throw Error(pos, $"probability {probability} is negative");
            entries.Add((key, probability));
            pos = SkipSpace(span, pos);
            if (pos >= span.Length) throw Error(pos, "missing closing '}'");
            if (span[pos] == '}') break;
            if (span[pos] != ',') throw Error(pos, "expected ',' or '}'");
            pos = SkipSpace(span, pos + 1);
            if (pos < span.Length && span[pos] == '}') break; // trailing comma
        }
        return new DiscretePdf(entries);
    }

    private static double ReadNumber(ReadOnlySpan<char> span, ref int pos, string what)
    {
        int start = pos;
        while (pos < span.Length && (char.IsAsciiDigit(span[pos]) || span[pos] is '.' or '-' or '+' or 'e' or 'E')) pos++;
        if (pos == start || !double.TryParse(span[start..pos], NumberStyles.Float, CultureInfo.InvariantCulture, out double value))
            throw Error(start, $"expected a number as {what}");
        return value;
    }

    private static int SkipSpace(ReadOnlySpan<char> span, int pos)
    {
        while (pos < span.Length && char.IsWhiteSpace(span[pos])) pos++;
        return pos;
    }

    private static FormatException Error(int pos, string message) => new($"character {pos + 1}: {message}");
}
