using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace RLMServing.Bench.Grading;

/// <summary>Finding numbers and boxed answers in model output, and putting them in normal form.</summary>
public static partial class AnswerText
{
    // A number not glued to a word or to a preceding number ("R2D2", "5-3" gives 5 and 3): an optional minus (ASCII or
    // U+2212) and dollar sign, then digits with thousands commas (1,234,567) or plain digits, and an optional decimal part.
    // A trailing full stop is not a decimal point ("42." is 42).
    [GeneratedRegex(@"^-?\d+(?:\.\d+)?$", RegexOptions.CultureInvariant)]
    private static partial Regex LongNumber();

    [GeneratedRegex(@"(?<![0-9A-Za-z.])(?<sign>[-\u2212])?\$?(?<num>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)", RegexOptions.CultureInvariant)]
    private static partial Regex NumberRegex();

    /// <summary>Every number in the text, in order, as normal forms (commas and dollar signs dropped, "-0" is "0").</summary>
    public static IEnumerable<string> Numbers(string text)
    {
        foreach (Match m in NumberRegex().Matches(text))
            if (Normalize((m.Groups["sign"].Success ? "-" : "") + m.Groups["num"].Value) is { } n) yield return n;
    }

    /// <summary>The last number in the text, normal form, or null.</summary>
    public static string? LastNumber(string text) => Numbers(text).LastOrDefault();

    /// <summary>
    /// A number's normal form: commas, dollar signs, spaces and a trailing full stop dropped, the Unicode minus read as
    /// '-', trailing decimal zeros removed ("18.00" is "18"); null when what is left is not a decimal number.
    /// </summary>
    public static string? Normalize(string text)
    {
        var t = text.Replace(",", "").Replace("$", "").Replace(" ", "").Replace('\u2212', '-').TrimEnd('.');
        string s;
        if (decimal.TryParse(t, NumberStyles.AllowLeadingSign | NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var d))
            s = d.ToString(CultureInfo.InvariantCulture);
        else if (LongNumber().IsMatch(t))
            s = t;   // past decimal's range (about 8e28): kept as written, compared as text
        else return null;
        if (s.Contains('.')) s = s.TrimEnd('0').TrimEnd('.');
        return s == "-0" ? "0" : s;
    }

    /// <summary>Whether two normal forms are the same number (compared as decimals, so "-0.50" and "-.5" agree).</summary>
    public static bool SameNumber(string a, string b) =>
        a == b || decimal.TryParse(a, NumberStyles.Number, CultureInfo.InvariantCulture, out var x)
        && decimal.TryParse(b, NumberStyles.Number, CultureInfo.InvariantCulture, out var y) && x == y;

    /// <summary>
    /// The content of the last <c>\boxed{...}</c> (or <c>\fbox{...}</c>, or <c>\boxed X</c> without braces) in the
    /// text, braces balanced; null when there is none or it is never closed.
    /// </summary>
    public static string? LastBoxed(string text)
    {
        int at = Math.Max(text.LastIndexOf("\\boxed", StringComparison.Ordinal), text.LastIndexOf("\\fbox", StringComparison.Ordinal));
        if (at < 0) return null;
        int i = at + (text.AsSpan(at).StartsWith("\\boxed") ? 6 : 5);
        if (i < text.Length && text[i] == ' ')
        {
            // "\boxed 5": the token up to the next space or dollar sign.
            int end = text.IndexOfAny([' ', '$', '\n'], i + 1);
            return text[(i + 1)..(end < 0 ? text.Length : end)];
        }
        if (i >= text.Length || text[i] != '{') return null;
        int depth = 0;
        for (int j = i; j < text.Length; j++)
        {
            if (text[j] == '{') depth++;
            else if (text[j] == '}' && --depth == 0) return text[(i + 1)..j];
        }
        return null;
    }

    /// <summary>Replaces each <c>\name{X}</c> with X (braces balanced), for text-styling commands.</summary>
    internal static string Unwrap(string text, string command)
    {
        var sb = new StringBuilder(text.Length);
        int i = 0;
        while (true)
        {
            int at = text.IndexOf(command + "{", i, StringComparison.Ordinal);
            if (at < 0) break;
            sb.Append(text, i, at - i);
            int open = at + command.Length, depth = 0, j = open;
            for (; j < text.Length; j++)
            {
                if (text[j] == '{') depth++;
                else if (text[j] == '}' && --depth == 0) break;
            }
            if (j >= text.Length) { sb.Append(text, at, text.Length - at); return sb.ToString(); }
            sb.Append(text, open + 1, j - open - 1);
            i = j + 1;
        }
        sb.Append(text, i, text.Length - i);
        return sb.ToString();
    }
}
