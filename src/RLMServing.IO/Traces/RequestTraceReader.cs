using Parquet;
using Parquet.Schema;
using RLMServing.IO.ParquetFiles;

namespace RLMServing.IO.Traces;

/// <summary>
/// Reads request-trace Parquet files one row group at a time. Besides files we wrote, it accepts files written by
/// other tools with the same column names (for example pandas, which writes int64 and nullable doubles).
/// </summary>
public static class RequestTraceReader
{
    public static IReadOnlyDictionary<string, string> ReadMetadata(string path)
    {
        var reader = ParquetColumns.Open(path);
        try { return new Dictionary<string, string>(reader.CustomMetadata); }
        finally { reader.DisposeAsync().AsTask().GetAwaiter().GetResult(); }
    }

    /// <summary>Streams the rows; <paramref name="bad"/> decides whether an invalid row stops the read.</summary>
    public static IEnumerable<RequestTraceRow> Read(string path, BadRows bad)
    {
        var reader = ParquetColumns.Open(path);
        try
        {
        var fields = reader.Schema.DataFields.ToDictionary(f => f.Name, StringComparer.Ordinal);
        DataField Required(string name) => fields.TryGetValue(name, out var f) ? f
            : throw new UserInputException($"{path}: not a request trace: column '{name}' is missing (has: {string.Join(", ", fields.Keys)})");
        var arrivalField = Required(RequestTraceSchema.ArrivalTimeS.Name);
        var promptField = Required(RequestTraceSchema.PromptTokens.Name);
        var outputField = Required(RequestTraceSchema.OutputTokens.Name);
        DataField? Optional(string name) => fields.GetValueOrDefault(name);
        var thinkingField = Optional(RequestTraceSchema.ThinkingTokens.Name);
        var sessionField = Optional(RequestTraceSchema.SessionId.Name);
        var turnField = Optional(RequestTraceSchema.TurnIndex.Name);
        var modelField = Optional(RequestTraceSchema.Model.Name);
        var failedField = Optional(RequestTraceSchema.Failed.Name);
        var statusField = Optional(RequestTraceSchema.Status.Name);
        var hashField = Optional(RequestTraceSchema.HashIds.Name);

        long rowNumber = 0;
        var order = new ArrivalOrder();
        for (int g = 0; g < reader.RowGroupCount; g++)
        {
            using var group = ParquetColumns.Guard(path, () => reader.OpenRowGroupReader(g));
            int n = checked((int)group.RowCount);
            var (arrival, prompt, output, thinking, session, turn, model, failed, status, hashes) = ParquetColumns.Guard(path, () => (
                ParquetColumns.ReadNumbers(path, group, arrivalField, n),
                ReadInts(path, group, promptField, n),
                ReadInts(path, group, outputField, n),
                thinkingField is null ? null : ReadInts(path, group, thinkingField, n),
                sessionField is null ? null : ReadStrings(path, group, sessionField, n),
                turnField is null ? null : ReadInts(path, group, turnField, n),
                modelField is null ? null : ReadStrings(path, group, modelField, n),
                failedField is null ? null : ReadBools(path, group, failedField, n),
                statusField is null ? null : ReadStrings(path, group, statusField, n),
                hashField is null ? null : ReadStrings(path, group, hashField, n)));
            for (int i = 0; i < n; i++)
            {
                rowNumber++;
                string? problem = null;
                int? p = prompt[i], o = output[i], t = thinking?[i];
                if (arrival[i] is not double a || !double.IsFinite(a) || a < 0) problem = $"{arrivalField.Name}: {Show(arrival[i])} is not a finite time >= 0";
                else if (p is not int pv || pv < 0) problem = $"{promptField.Name}: {Show(p)} is not a non-negative integer";
                else if (o is not int ov || ov < 0) problem = $"{outputField.Name}: {Show(o)} is not a non-negative integer";
                else if (t is int tv && (tv < 0 || tv > ov)) problem = $"thinking_tokens: {tv} must be between 0 and output_tokens ({ov})";
                else problem = order.Check(a);
                if (problem is not null)
                {
                    bad.Report(rowNumber, 0, problem, unit: "row");
                    continue;
                }
                order.Accept(arrival[i]!.Value);
                yield return new RequestTraceRow(arrival[i]!.Value, p!.Value, o!.Value, t, session?[i], turn?[i], model?[i], failed?[i], status?[i], hashes?[i]);
            }
        }
        }
        finally
        {
            reader.DisposeAsync().AsTask().GetAwaiter().GetResult();
        }
    }

    private static string Show(object? value) => value?.ToString() ?? "null";

    private static int?[] ReadInts(string path, ParquetRowGroupReader group, DataField field, int n)
    {
        var type = field.ClrType;
        var doubles = type == typeof(int) ? null : ParquetColumns.ReadNumbers(path, group, field, n);
        if (doubles is null)
        {
            var ints = new int?[n];
            if (field.IsNullable) group.ReadAsync<int>(field, ints.AsMemory()).GetAwaiter().GetResult();
            else
            {
                var raw = new int[n];
                group.ReadAsync<int>(field, raw.AsMemory()).GetAwaiter().GetResult();
                for (int i = 0; i < n; i++) ints[i] = raw[i];
            }
            return ints;
        }
        var result = new int?[n];
        for (int i = 0; i < n; i++)
        {
            if (doubles[i] is double d && !double.IsNaN(d))
                result[i] = d == Math.Floor(d) && d >= int.MinValue && d <= int.MaxValue ? (int)d : -1; // -1 is rejected as "not a non-negative integer"
        }
        return result;
    }

    private static string?[] ReadStrings(string path, ParquetRowGroupReader group, DataField field, int n)
    {
        if (field.ClrType != typeof(string) && field.ClrType != typeof(ReadOnlyMemory<char>))
            throw new UserInputException($"{path}: column '{field.Name}' has type {field.ClrType.Name}; expected a string");
        var raw = new string?[n];
        group.ReadAsync(field, raw.AsMemory()).GetAwaiter().GetResult();
        return raw;
    }

    private static bool?[] ReadBools(string path, ParquetRowGroupReader group, DataField field, int n)
    {
        if (field.ClrType != typeof(bool))
            throw new UserInputException($"{path}: column '{field.Name}' has type {field.ClrType.Name}; expected a boolean");
        var result = new bool?[n];
        if (field.IsNullable) group.ReadAsync<bool>(field, result.AsMemory()).GetAwaiter().GetResult();
        else
        {
            var raw = new bool[n];
            group.ReadAsync<bool>(field, raw.AsMemory()).GetAwaiter().GetResult();
            for (int i = 0; i < n; i++) result[i] = raw[i];
        }
        return result;
    }
}
