using System.Globalization;

namespace RLMServing.IO.Traces;

/// <summary>
/// Minimal fast CSV reading for trace files: one record per line (no embedded newlines), optional double quotes
/// around a field. Fields are returned as ranges into the line so parsing allocates nothing per field.
/// </summary>
internal sealed class CsvLines : IDisposable
{
    private readonly StreamReader _reader;
    private char[] _buffer = new char[1 << 16];
    private int _start, _end;
    private bool _eof;

    public CsvLines(string path)
    {
        Files.InputFile.CheckRegular(path);
        File = path;
        _reader = new StreamReader(path, System.Text.Encoding.UTF8, detectEncodingFromByteOrderMarks: true, bufferSize: 1 << 16);
    }

    public string File { get; }

    /// <summary>Longest line read: 1 Mi characters.</summary>
    public const int MaxLineChars = 1 << 20;

    /// <summary>1-based number of the line last returned.</summary>
    public long LineNumber { get; private set; }

    /// <summary>Next non-blank line, or null at the end.</summary>
    public string? Next() => TryNext(out var line) ? line.ToString() : null;

    /// <summary>
    /// Next non-blank line without allocating: the span points into an internal buffer and is valid until the next
    /// call. A trailing '\r' is removed.
    /// </summary>
    public bool TryNext(out ReadOnlySpan<char> line)
    {
        while (true)
        {
            var pending = _buffer.AsSpan(_start, _end - _start);
            int newline = pending.IndexOf('\n');
            if (newline >= 0 || (_eof && pending.Length > 0))
            {
                int length = newline >= 0 ? newline : pending.Length;
                line = pending[..length];
                _start += newline >= 0 ? newline + 1 : length;
                LineNumber++;
                if (line.Length > 0 && line[^1] == '\r') line = line[..^1];
                if (line.IsEmpty || line.IsWhiteSpace()) continue;
                return true;
            }
            if (_eof)
            {
                line = default;
                return false;
            }
            if (_start > 0)
            {
                pending.CopyTo(_buffer);
                _end = pending.Length;
                _start = 0;
            }
            if (_end == _buffer.Length)
            {
                // A trace's line is a few hundred characters; a file of one endless line is not a trace, and reading
                // it whole would take all memory.
                if (_buffer.Length >= MaxLineChars)
                    throw new UserInputException($"{File}:{LineNumber + 1}: a line longer than {MaxLineChars:N0} characters; not a trace file (docs/limits.md)");
                Array.Resize(ref _buffer, _buffer.Length * 2);
            }
            int read = _reader.Read(_buffer, _end, _buffer.Length - _end);
            if (read == 0) _eof = true;
            else _end += read;
        }
    }

    /// <summary>Splits a line at commas; returns the field count (fields beyond the span's length are counted, not stored).</summary>
    public static int Split(ReadOnlySpan<char> line, Span<Range> fields)
    {
        int count = 0, start = 0;
        var span = line;
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
        // Fast path: plain ASCII digits, no sign, at most 9 digits (cannot overflow).
        if (text.Length is > 0 and <= 9)
        {
            int v = 0, i = 0;
            for (; i < text.Length; i++)
            {
                int digit = text[i] - '0';
                if ((uint)digit > 9) break;
                v = v * 10 + digit;
            }
            if (i == text.Length) { value = v; return true; }
        }
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

    private static readonly double[] PowersOfTen = [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18];

    public static bool TryParseTime(ReadOnlySpan<char> text, out double value)
    {
        // Fast path for plain decimals ("123.456789"): mantissa and 10^k are exact doubles, so one IEEE division
        // gives the correctly rounded value, the same as double.Parse.
        if (text.Length is > 0 and <= 16)
        {
            long mantissa = 0;
            int fractionDigits = -1, i = 0;
            for (; i < text.Length; i++)
            {
                char c = text[i];
                if (c == '.' && fractionDigits < 0) { fractionDigits = 0; continue; }
                int digit = c - '0';
                if ((uint)digit > 9) break;
                mantissa = mantissa * 10 + digit;
                if (fractionDigits >= 0) fractionDigits++;
            }
            if (i == text.Length && fractionDigits != 0 && text[0] != '.')
            {
                value = fractionDigits <= 0 ? mantissa : mantissa / PowersOfTen[fractionDigits];
                return true;
            }
        }
        return double.TryParse(text.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out value) && double.IsFinite(value) && value >= 0;
    }

    public void Dispose() => _reader.Dispose();
}
