namespace RLMServing.IO.Traces;

/// <summary>
/// What to do with an invalid input row: by default stop with <c>file:line:column: problem</c>; with
/// <c>--skip-bad-rows</c> skip it, count it and remember its line (the first <see cref="MaxLinesKept"/> lines).
/// </summary>
public sealed class BadRows(string file, bool skip)
{
    public const int MaxLinesKept = 1000;

    private readonly List<long> _lines = [];

    public string File { get; } = file;

    public bool Skip { get; } = skip;

    public long Count { get; private set; }

    public IReadOnlyList<long> Lines => _lines;

    public string? FirstProblem { get; private set; }

    /// <summary>Reports a bad row. <paramref name="column"/> is 1-based; 0 when there is no column position.</summary>
    public void Report(long line, int column, string problem, string unit = "line", string? file = null)
    {
        file ??= File;
        string where = unit == "line"
            ? (column > 0 ? $"{file}:{line}:{column}" : $"{file}:{line}")
            : $"{file}: {unit} {line}";
        string message = $"{where}: {problem}";
        if (!Skip) throw new UserInputException(message);
        Count++;
        FirstProblem ??= message;
        if (_lines.Count < MaxLinesKept) _lines.Add(line);
    }
}

/// <summary>Requests must arrive in non-decreasing time order so that statistics and replay can stream.</summary>
internal sealed class ArrivalOrder
{
    private double _last = double.NegativeInfinity;

    public string? Check(double arrivalTimeS) =>
        arrivalTimeS < _last
            ? $"arrival time {arrivalTimeS:R} s is earlier than the previous row's {_last:R} s; request traces must be sorted by arrival time"
            : null;

    public void Accept(double arrivalTimeS) => _last = arrivalTimeS;
}
