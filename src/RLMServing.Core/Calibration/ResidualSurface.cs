using MathNet.Numerics.Interpolation;

namespace RLMServing.Calibration;

/// <summary>
/// Interpolates a <see cref="ResidualTable"/>: bilinear in (log batch, log length) inside the grid — exact on its
/// points — built from MathNet linear splines along each batch row and a linear blend between the two rows around
/// the query.
/// </summary>
public sealed class ResidualSurface
{
    private readonly double[] _logBatch;
    private readonly double[] _logLength;
    private readonly LinearSpline[]? _rows;
    private readonly double[][] _logRatio;

    public ResidualSurface(ResidualTable table)
    {
        if (table.Problem() is { } problem) throw new ArgumentException(problem);
        _logBatch = table.Batch.Select(x => Math.Log(x)).ToArray();
        _logLength = table.Length.Select(x => Math.Log(x)).ToArray();
        _logRatio = table.Ratio.Select(r => r.Select(x => Math.Log(x)).ToArray()).ToArray();
        if (_logLength.Length > 1) _rows = _logRatio.Select(r => LinearSpline.InterpolateSorted(_logLength, r)).ToArray();
        MinBatch = table.Batch[0]; MaxBatch = table.Batch[^1];
        MinLength = table.Length[0]; MaxLength = table.Length[^1];
    }

    public double MinBatch { get; }
    public double MaxBatch { get; }
    public double MinLength { get; }
    public double MaxLength { get; }

    /// <summary>The query clamped into the grid's box, and whether it lay beyond the largest batch or length.</summary>
    public (double Batch, double Length, bool Above) Clamp(double batch, double length) =>
        (Math.Clamp(batch, MinBatch, MaxBatch), Math.Clamp(length, MinLength, MaxLength), batch > MaxBatch || length > MaxLength);

    /// <summary>The ratio at a point of the grid's box (callers clamp first).</summary>
    public double Ratio(double batch, double length)
    {
        double lb = Math.Log(batch), ll = Math.Log(length);
        double Row(int i) => _rows is null ? _logRatio[i][0] : _rows[i].Interpolate(ll);
        if (_logBatch.Length == 1) return Math.Exp(Row(0));
        int hi = Array.BinarySearch(_logBatch, lb);
        if (hi >= 0) return Math.Exp(Row(hi));
        hi = Math.Clamp(~hi, 1, _logBatch.Length - 1);
        int lo = hi - 1;
        double w = (lb - _logBatch[lo]) / (_logBatch[hi] - _logBatch[lo]);
        return Math.Exp(Row(lo) * (1 - w) + Row(hi) * w);
    }
}
