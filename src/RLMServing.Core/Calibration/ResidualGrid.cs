using System.Text.Json.Serialization;
using MathNet.Numerics.Interpolation;

namespace RLMServing.Calibration;

/// <summary>
/// One phase's measured/regression ratios on the measured grid (calibration file key <c>residuals.&lt;phase&gt;</c>):
/// rows are batch sizes (sequences), columns lengths per sequence (prompt tokens for prefill, KV length for decode),
/// <c>ratio[i][j]</c> the measured time over the regression's at (batch[i], length[j]). Plain data.
/// </summary>
public sealed record ResidualTable
{
    [JsonPropertyName("batch")] public List<double> Batch { get; init; } = [];
    [JsonPropertyName("length")] public List<double> Length { get; init; } = [];
    [JsonPropertyName("ratio")] public List<List<double>> Ratio { get; init; } = [];

    /// <summary>Why a table cannot be used, or null: axes ascending and positive, one finite positive ratio per cell.</summary>
    public string? Problem()
    {
        if (Batch.Count == 0 || Length.Count == 0) return "batch and length must not be empty";
        if (!Ascending(Batch) || !Ascending(Length)) return "batch and length must be positive and strictly ascending";
        if (Ratio.Count != Batch.Count || Ratio.Any(r => r.Count != Length.Count)) return $"ratio must be {Batch.Count} rows of {Length.Count}";
        if (Ratio.Any(r => r.Any(v => !(v > 0) || !double.IsFinite(v)))) return "every ratio must be a finite number > 0";
        return null;
    }

    private static bool Ascending(List<double> v) => v[0] > 0 && v.Zip(v.Skip(1)).All(p => p.Second > p.First);

    /// <summary>
    /// The table through measured points (batch, length, ratio). Points at the same grid point are merged by their
    /// geometric mean; a batch row's missing lengths are interpolated along that row (constant beyond its ends).
    /// </summary>
    public static ResidualTable FromPoints(IReadOnlyList<(double Batch, double Length, double Ratio)> points)
    {
        var batches = points.Select(p => p.Batch).Distinct().Order().ToList();
        var lengths = points.Select(p => p.Length).Distinct().Order().ToList();
        var rows = new List<List<double>>();
        foreach (var b in batches)
        {
            var cells = points.Where(p => p.Batch == b).GroupBy(p => p.Length)
                .Select(g => (LogLength: Math.Log(g.Key), LogRatio: g.Average(p => Math.Log(p.Ratio)))).OrderBy(c => c.LogLength).ToList();
            var row = cells.Count == 1
                ? lengths.Select(_ => Math.Exp(cells[0].LogRatio)).ToList()
                : lengths.Select(l => Math.Exp(ClampedLinear(cells.Select(c => c.LogLength).ToArray(), cells.Select(c => c.LogRatio).ToArray(), Math.Log(l)))).ToList();
            rows.Add(row);
        }
        return new ResidualTable { Batch = batches, Length = lengths, Ratio = rows };
    }

    /// <summary>Piecewise-linear through (x, y), constant beyond the first and last x.</summary>
    internal static double ClampedLinear(double[] x, double[] y, double at) =>
        x.Length == 1 ? y[0] : LinearSpline.InterpolateSorted(x, y).Interpolate(Math.Clamp(at, x[0], x[^1]));
}

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
