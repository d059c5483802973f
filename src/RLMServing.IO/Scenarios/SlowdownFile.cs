using System.Globalization;
using RLMServing.Calibration;
using RLMServing.IO.ParquetFiles;
using RLMServing.IO.Traces;

namespace RLMServing.IO.Scenarios;

/// <summary>
/// Reads a machine-speed series for <c>cost_model.slowdown.file</c>, from Parquet (<c>.parquet</c>) or CSV with a
/// header line; other columns are ignored. <see cref="Read"/> takes rows of <c>time_s</c> (seconds on the run's clock,
/// ≥ 0) and <c>slowdown</c> (the factor on step times then, &gt; 0). <see cref="AgainstCalibration"/> reads an
/// interleaved profile's visits (profile-visits.parquet) and prices each against a calibration instead.
/// </summary>
public static class SlowdownFile
{
    public const string TimeColumn = "time_s";
    public const string FactorColumn = "slowdown";

    /// <summary>The visit columns <see cref="AgainstCalibration"/> needs (profile-visits.parquet has them).</summary>
    public static readonly string[] VisitColumns = [TimeColumn, "batch", "prompt_tokens", "first_step", "decode_steps", "mean_step_us"];

    public static IReadOnlyList<(double TimeS, double Factor)> Read(string path) =>
        ReadRows(path, [TimeColumn, FactorColumn]).Select(r => (Time(path, r), Positive(path, r, 1, FactorColumn))).ToList();

    /// <summary>
    /// Each visit's slowdown against the calibration: its measured mean step over the calibration's prediction of the
    /// same steps (batch b, decode steps s = first_step..decode_steps at a context of prompt_tokens + s each). So the
    /// series says how much slower than the calibration the machine ran at each moment — its level as well as its swings.
    /// </summary>
    public static IReadOnlyList<(double TimeS, double Factor)> AgainstCalibration(string path, CalibratedIterationModel model) =>
        ReadRows(path, VisitColumns).Select(r =>
        {
            int batch = Whole(path, r, 1, "batch", 1), prompt = Whole(path, r, 2, "prompt_tokens", 0);
            int first = Whole(path, r, 3, "first_step", 1), steps = Whole(path, r, 4, "decode_steps", first);
            double mean = Positive(path, r, 5, "mean_step_us");
            double predicted = 0;
            for (int s = first; s <= steps; s++) predicted += model.PredictDecodeUs(batch, (double)batch * (prompt + s));
            predicted /= steps - first + 1;
            if (!(predicted > 0)) throw new UserInputException($"{path}: {r.Where}: the calibration predicts {predicted} µs for this visit's steps");
            return (Time(path, r), mean / predicted);
        }).ToList();

    private sealed record Row(string Where, double?[] Values);

    private static List<Row> ReadRows(string path, string[] columns)
    {
        var rows = path.EndsWith(".parquet", StringComparison.OrdinalIgnoreCase) ? ReadParquet(path, columns) : ReadCsv(path, columns);
        if (rows.Count == 0) throw new UserInputException($"{path}: no rows; expected {string.Join(", ", columns)}");
        return rows;
    }

    private static List<Row> ReadParquet(string path, string[] columns)
    {
        var reader = ParquetColumns.Open(path);
        try
        {
            var fields = columns.Select(c => reader.Field(c, path)).ToArray();
            var rows = new List<Row>();
            for (int g = 0; g < reader.RowGroupCount; g++)
            {
                using var group = reader.OpenRowGroupReader(g);
                int n = checked((int)group.RowCount);
                var values = fields.Select(f => ParquetColumns.ReadNumbers(path, group, f, n)).ToArray();
                for (int i = 0; i < n; i++) rows.Add(new Row($"row {rows.Count + 1}", values.Select(v => v[i]).ToArray()));
            }
            return rows;
        }
        catch (Exception e) when (e is IOException or InvalidDataException or NotSupportedException or Parquet.ParquetException)
        {
            throw new UserInputException($"{path}: not a readable Parquet file ({e.Message})", e);
        }
        finally
        {
            reader.DisposeAsync().AsTask().GetAwaiter().GetResult();
        }
    }

    private static List<Row> ReadCsv(string path, string[] columns)
    {
        using var csv = new CsvLines(path);
        var headerLine = csv.Next() ?? throw new UserInputException($"{path}: the file is empty; expected a header line with {string.Join(", ", columns)}");
        var header = CsvLines.Header(headerLine);
        var at = columns.Select(name => header.TryGetValue(CsvLines.Normalize(name), out int i) ? i
            : throw new UserInputException($"{path}: line 1: missing column '{name}' (has: {headerLine.Trim()})")).ToArray();
        int needed = at.Max() + 1;
        var rows = new List<Row>();
        var ranges = new Range[Math.Max(header.Count, 1) + 8];
        while (csv.Next() is { } line)
        {
            int n = CsvLines.Split(line, ranges);
            string where = $"line {csv.LineNumber}";
            if (n < needed) throw new UserInputException($"{path}: {where}: {n} fields, expected at least {needed}");
            rows.Add(new Row(where, at.Select(i => Parse(line[ranges[i]])).ToArray()));
        }
        return rows;
    }

    private static double? Parse(string text) =>
        double.TryParse(text.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out var v) ? v : null;

    private static double Time(string path, Row r) =>
        r.Values[0] is double t && double.IsFinite(t) && t >= 0 ? t
            : throw new UserInputException($"{path}: {r.Where}: {TimeColumn} {Show(r.Values[0])} is not a finite time >= 0");

    private static double Positive(string path, Row r, int i, string name) =>
        r.Values[i] is double f && double.IsFinite(f) && f > 0 ? f
            : throw new UserInputException($"{path}: {r.Where}: {name} {Show(r.Values[i])} is not a finite {(name == FactorColumn ? "factor" : "value")} > 0");

    private static int Whole(string path, Row r, int i, string name, int min) =>
        r.Values[i] is double v && v == Math.Floor(v) && v >= min && v <= int.MaxValue ? (int)v
            : throw new UserInputException($"{path}: {r.Where}: {name} {Show(r.Values[i])} is not a whole number >= {min}");

    private static string Show(double? v) => v?.ToString(CultureInfo.InvariantCulture) ?? "(empty or not a number)";
}
