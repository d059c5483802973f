using System.Globalization;

namespace RLMServing.IO.Traces;

/// <summary>
/// Minimal fast CSV reading for trace files: one record per line (no embedded newlines), optional double quotes
/// around a field. Fields are returned as ranges into the line so parsing allocates nothing per field.
/// </summary>
internal sealed class CsvLines : IDisposable
{
    private readonly StreamReader _reader;

    public CsvLines(string path)
    {
        if (!System.IO.File.Exists(path)) throw new UserInputException($"{path}: file not found");
        File = path;
        _reader = new StreamReader(path, System.Text.Encoding.UTF8, detectEncodingFromByteOrderMarks: true, bufferSize: 1 << 16);
    }

    public string File { get; }

    /// <summary>1-based number of the line last returned.</summary>
    public long LineNumber { get; private set; }

    /// <summary>Next non-blank line, or null at the end.</summary>
    public string? Next()
    {
        while (true)
        {
            var line = _reader.ReadLine();
            if (line is null) return null;
            LineNumber++;
            if (line.Length > 0 && !string.IsNullOrWhiteSpace(line)) return line;
        }
    }

    /// <summary>Splits a line at commas; returns the field count (fields beyond the span's length are counted, not stored).</summary>
    public static int Split(string line, Span<Range> fields)
    {
        int count = 0, start = 0;
        var span = line.AsSpan();
        if (span.IndexOf('"') < 0)
        {
            while (true)
            {
                int comma = span[start..].IndexOf(',');
                int end = comma < 0 ? span.Length : start + comma;
                if (count < fields.Length) fields[count] = new Range(start, end);
                count++;
                if (comma < 0) return count;
                start = end + 1;
            }
        }
        // Slow path: quoted fields (a quote inside a quoted field is written twice and kept as is).
        int i = 0;
        while (true)
        {
            int fieldStart = i, fieldEnd;
            if (i < span.Length && span[i] == '"')
            {
                int j = i + 1;
                while (j < span.Length && !(span[j] == '"' && (j + 1 == span.Length || span[j + 1] != '"'))) j += span[j] == '"' ? 2 : 1;
                fieldStart = i + 1;
                fieldEnd = Math.Min(j, span.Length);
                i = Math.Min(j + 1, span.Length);
                while (i < span.Length && span[i] != ',') i++;
            }
            else
            {
                while (i < span.Length && span[i] != ',') i++;
                fieldEnd = i;
            }
            if (count < fields.Length) fields[count] = new Range(fieldStart, fieldEnd);
            count++;
            if (i >= span.Length) return count;
            i++;
        }
    }

    /// <summary>Maps header names to field positions; names are compared without case, spaces, '_' or '-'.</summary>
    public static Dictionary<string, int> Header(string line)
    {
        Span<Range> ranges = stackalloc Range[64];
        int n = Split(line, ranges);
        var map = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < Math.Min(n, ranges.Length); i++)
            map.TryAdd(Normalize(line.AsSpan()[ranges[i]].Trim().ToString()), i);
        return map;
    }

    public static string Normalize(string name)
    {
        var chars = name.Where(c => c is not (' ' or '_' or '-')).Select(char.ToLowerInvariant).ToArray();
        var s = new string(chars);
        return s.Length > 0 && s[0] == '\uFEFF' ? s[1..] : s;
    }

    public static bool TryParseCount(ReadOnlySpan<char> text, out int value)
    {
        text = text.Trim();
        if (int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out value)) return true;
        // Some exports write counts as floats ("12.0"); accept integral values only.
        if (double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double d) && d >= 0 && d <= int.MaxValue && d == Math.Floor(d))
        {
            value = (int)d;
            return true;
        }
        value = 0;
        return false;
    }

    public static bool TryParseTime(ReadOnlySpan<char> text, out double value) =>
        double.TryParse(text.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out value) && double.IsFinite(value) && value >= 0;

    public void Dispose() => _reader.Dispose();
}
