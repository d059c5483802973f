namespace RLMServing.Policies;

/// <summary>
/// A quality figure as a function of a policy knob (KV budget, kept fraction, thinking budget): piecewise linear
/// between the cited points, flat beyond the first and last (no extrapolation past what was measured), or a fixed
/// value the user set. <see cref="Source"/> says where it came from, for the summary and the docs.
/// </summary>
public sealed record QualityEstimate(IReadOnlyList<(double X, double Y)> Points, double? Fixed, string Source)
{
    public static QualityEstimate Constant(double value, string source) => new([], value, source);

    public double At(double x)
    {
        if (Fixed is double f) return f;
        if (Points.Count == 0) throw new InvalidOperationException("a quality curve needs at least one point");
        if (x <= Points[0].X) return Points[0].Y;
        for (int i = 1; i < Points.Count; i++)
        {
            var (x1, y1) = Points[i];
            if (x > x1) continue;
            var (x0, y0) = Points[i - 1];
            return y0 + (y1 - y0) * (x - x0) / (x1 - x0);
        }
        return Points[^1].Y;
    }

    /// <summary>The value with no limit at all (the curve's last point: the largest budget measured).</summary>
    public double Unlimited => Fixed ?? Points[^1].Y;
}
