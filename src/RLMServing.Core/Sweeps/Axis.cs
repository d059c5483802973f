using System.Globalization;

namespace RLMServing.Sweeps;

/// <summary>
/// One value of a sweep axis: the YAML text applied to the scenario key (as <c>--set key=TEXT</c> would), and the
/// number when the value is one (numeric axes become double columns in results.parquet).
/// </summary>
public sealed record AxisValue(string Text, double? Number)
{
    public static AxisValue Of(double x, bool integer)
    {
        if (integer)
        {
            double r = Math.Round(x, MidpointRounding.AwayFromZero);
            return new(((long)r).ToString(CultureInfo.InvariantCulture), r);
        }
        return new(x.ToString("R", CultureInfo.InvariantCulture), x);
    }
}

/// <summary>A swept scenario key (dotted) and the values it takes.</summary>
public abstract record Axis(string Key)
{
    /// <summary>True when every value is a number (the results column is a double).</summary>
    public abstract bool Numeric { get; }

    /// <summary>The values of a full grid, in order.</summary>
    public abstract IReadOnlyList<AxisValue> GridValues();

    /// <summary>The value at quantile <paramref name="u"/> in [0, 1), for random and Latin hypercube sampling.</summary>
    public abstract AxisValue At(double u);
}

/// <summary>An explicit list of values (categorical or numeric); sampling picks one uniformly.</summary>
public sealed record ListAxis(string Key, IReadOnlyList<AxisValue> Values) : Axis(Key)
{
    public override bool Numeric => Values.All(v => v.Number is not null);
    public override IReadOnlyList<AxisValue> GridValues() => Values;
    public override AxisValue At(double u) => Values[Math.Min((int)(u * Values.Count), Values.Count - 1)];
}

/// <summary>
/// A numeric range [From, To]: a grid takes every <see cref="Step"/> or <see cref="Points"/> evenly spaced values
/// (on a log scale when <see cref="Log"/>); sampling draws continuously on that scale, snapped to the step when
/// there is one. <see cref="Integer"/> rounds every value to a whole number (duplicates dropped in a grid).
/// </summary>
public sealed record RangeAxis(string Key, double From, double To, double? Step, int? Points, bool Log, bool Integer) : Axis(Key)
{
    public override bool Numeric => true;

    public override IReadOnlyList<AxisValue> GridValues()
    {
        var xs = new List<double>();
        if (Step is { } step)
        {
            long n = (long)Math.Floor((To - From) / step + 1e-9);
            for (long k = 0; k <= n; k++) xs.Add(From + k * step);
        }
        else
        {
            int n = Points ?? throw new InvalidOperationException($"axis {Key}: a grid needs step or points");
            for (int i = 0; i < n; i++) xs.Add(n == 1 ? From : Scale(i / (double)(n - 1)));
        }
        var seen = new HashSet<string>();
        return xs.Select(x => AxisValue.Of(x, Integer)).Where(v => seen.Add(v.Text)).ToList();
    }

    public override AxisValue At(double u)
    {
        if (Step is not null)
        {
            var grid = GridValues();
            return grid[Math.Min((int)(u * grid.Count), grid.Count - 1)];
        }
        return AxisValue.Of(Scale(u), Integer);
    }

    private double Scale(double u) =>
        u <= 0 ? From : u >= 1 ? To
        : Log ? Math.Exp(Math.Log(From) + u * (Math.Log(To) - Math.Log(From)))
        : From + u * (To - From);
}
