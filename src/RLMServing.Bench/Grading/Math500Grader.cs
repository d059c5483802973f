using System.Text.RegularExpressions;

namespace RLMServing.Bench.Grading;

/// <summary>
/// MATH-500: the content of the last <c>\boxed{}</c> in the model's text against the reference answer (itself boxed
/// in a full solution, bare in MATH-500's answer field), both normalised as the MATH benchmark's checker does, in
/// part: spaces, <c>$</c>, <c>\left</c>/<c>\right</c>, spacing commands, degree signs, percent signs and a trailing
/// full stop dropped; <c>\dfrac</c>/<c>\tfrac</c> read as <c>\frac</c>, <c>\frac12</c> as <c>\frac{1}{2}</c>;
/// <c>\text{}</c>/<c>\mathrm{}</c>/<c>\textbf{}</c> unwrapped; a short "x = " in front dropped. Then an exact string
/// match, or, when both are numbers (a plain decimal or an integer fraction), equal values. No symbolic algebra:
/// "2\sqrt{2}" and "\sqrt{8}" differ.
/// </summary>
public sealed partial class Math500Grader : IAnswerGrader
{
    public string Dataset => "math500";

    [GeneratedRegex(@"\\frac(\d)(\d)", RegexOptions.CultureInvariant)]
    private static partial Regex ShortFrac();

    [GeneratedRegex(@"^(?:-?\\frac\{(-?\d+)\}\{(\d+)\}|(-?\d+)/(\d+))$", RegexOptions.CultureInvariant)]
    private static partial Regex Fraction();

    [GeneratedRegex(@"^[A-Za-z](?:_\{?\w+\}?)?=", RegexOptions.CultureInvariant)]
    private static partial Regex ShortLhs();

    public string? Reference(string reference)
    {
        var answer = reference.Contains("\\boxed", StringComparison.Ordinal) || reference.Contains("\\fbox", StringComparison.Ordinal)
            ? AnswerText.LastBoxed(reference) : reference;
        return answer is null ? null : Normal(answer) is { Length: > 0 } n ? n : null;
    }

    public string? Extract(string text) => AnswerText.LastBoxed(text) is { } boxed && Normal(boxed) is { Length: > 0 } n ? n : null;

    public bool Same(string extracted, string reference) =>
        extracted == reference || Value(extracted) is { } a && Value(reference) is { } b && a == b;

    internal static string Normal(string answer)
    {
        var s = answer;
        foreach (var cmd in new[] { "\\text", "\\mathrm", "\\textbf", "\\mbox" }) s = AnswerText.Unwrap(s, cmd);
        s = s.Replace("\\dfrac", "\\frac").Replace("\\tfrac", "\\frac")
            .Replace("\\left", "").Replace("\\right", "")
            .Replace("\\!", "").Replace("\\,", "").Replace("\\;", "").Replace("\\:", "").Replace("\\ ", "")
            .Replace("^{\\circ}", "").Replace("^\\circ", "").Replace("\\%", "").Replace("%", "").Replace("$", "");
        s = string.Concat(s.Where(c => !char.IsWhiteSpace(c))).TrimEnd('.');
        s = ShortFrac().Replace(s, @"\frac{$1}{$2}");
        if (ShortLhs().Match(s) is { Success: true } lhs && lhs.Length <= 4) s = s[lhs.Length..];
        if (s.StartsWith('.')) s = "0" + s;
        return s;
    }

    /// <summary>A plain number (thousands commas allowed) or an integer fraction, as a decimal; null otherwise.</summary>
    private static decimal? Value(string s)
    {
        if (AnswerText.Normalize(s) is { } n && decimal.TryParse(n, System.Globalization.NumberStyles.Number, System.Globalization.CultureInfo.InvariantCulture, out var d)) return d;
        var m = Fraction().Match(s);
        if (!m.Success) return null;
        bool latex = m.Groups[1].Success;
        var culture = System.Globalization.CultureInfo.InvariantCulture;
        if (!decimal.TryParse(latex ? m.Groups[1].Value : m.Groups[3].Value, System.Globalization.NumberStyles.AllowLeadingSign, culture, out var num)
            || !decimal.TryParse(latex ? m.Groups[2].Value : m.Groups[4].Value, System.Globalization.NumberStyles.None, culture, out var den) || den == 0) return null;
        return (s.StartsWith("-\\frac", StringComparison.Ordinal) ? -1 : 1) * num / den;
    }
}
