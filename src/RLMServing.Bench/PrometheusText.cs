using System.Globalization;

namespace RLMServing.Bench;

/// <summary>
/// Reads Prometheus' text exposition format (what vLLM's and SGLang's /metrics serve): one sample per line,
/// <c>name{labels} value [timestamp]</c>, comments and blank lines skipped. Samples of one name with different labels
/// (several engines, several models) are summed, which is what a single replica's view needs.
/// </summary>
public static class PrometheusText
{
    public static Dictionary<string, double> Parse(string text)
    {
        var values = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (var raw in text.AsSpan().EnumerateLines())
        {
            var line = raw.Trim();
            if (line.IsEmpty || line[0] == '#') continue;
            int nameEnd = line.IndexOfAny('{', ' ');
            if (nameEnd <= 0) continue;
            string name = line[..nameEnd].ToString();
            var rest = line[nameEnd..];
            if (rest[0] == '{')
            {
                int close = ClosingBrace(rest);
                if (close < 0) continue;
                rest = rest[(close + 1)..];
            }
            rest = rest.TrimStart();
            int space = rest.IndexOf(' ');
            var number = space < 0 ? rest : rest[..space];
            if (!TryNumber(number, out double v)) continue;
            values[name] = values.GetValueOrDefault(name) + v;
        }
        return values;
    }

    // Label values may hold '}' inside quotes.
    private static int ClosingBrace(ReadOnlySpan<char> s)
    {
        bool quoted = false;
        for (int i = 1; i < s.Length; i++)
        {
            if (s[i] == '\\' && quoted) { i++; continue; }
            if (s[i] == '"') quoted = !quoted;
            else if (s[i] == '}' && !quoted) return i;
        }
        return -1;
    }

    private static bool TryNumber(ReadOnlySpan<char> s, out double v)
    {
        switch (s)
        {
            case "NaN": v = double.NaN; return true;
            case "+Inf": v = double.PositiveInfinity; return true;
            case "-Inf": v = double.NegativeInfinity; return true;
        }
        return double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out v);
    }
}
