using System.Globalization;

namespace RLMServing.Bench.Grading;

/// <summary>
/// AIME: every answer is an integer from 0 to 999. The content of the last <c>\boxed{}</c> if the text has one, else
/// the last number in the text; it counts only as a whole number in 0..999 (leading zeros allowed: "033" is 33).
/// </summary>
public sealed class Aime24Grader : IAnswerGrader
{
    public string Dataset => "aime24";

    public string? Reference(string reference) => Integer(AnswerText.LastBoxed(reference) ?? reference.Trim());

    public string? Extract(string text) =>
        AnswerText.LastBoxed(text) is { } boxed ? Integer(boxed) : Integer(AnswerText.LastNumber(text) ?? "");

    public bool Same(string extracted, string reference) => extracted == reference;

    private static string? Integer(string text)
    {
        var n = AnswerText.Normalize(text.Replace("^\\circ", "").Replace("^{\\circ}", "")) ?? AnswerText.LastNumber(text);
        return n is not null && int.TryParse(n, NumberStyles.None, CultureInfo.InvariantCulture, out int v) && v is >= 0 and <= 999
            ? v.ToString(CultureInfo.InvariantCulture) : null;
    }
}
