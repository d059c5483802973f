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
