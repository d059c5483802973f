namespace RLMServing.Bench.Grading;

/// <summary>
/// GSM8K as the study graded it: the last number in the model's answer against the number after the reference's
/// <c>#### </c> (GSM8K's solutions end "#### 72"), both with commas, dollar signs and a trailing full stop dropped,
/// compared as numbers. A reference without "####" is read as a bare number (a custom dataset's answer field).
/// </summary>
public sealed class Gsm8kGrader : IAnswerGrader
{
    public string Dataset => "gsm8k";

    public string? Reference(string reference)
    {
        int at = reference.LastIndexOf("####", StringComparison.Ordinal);
        var tail = (at >= 0 ? reference[(at + 4)..] : reference).Trim();
        return AnswerText.Normalize(tail) ?? AnswerText.LastNumber(tail);
    }

    public string? Extract(string text) => AnswerText.LastNumber(text);

    public bool Same(string extracted, string reference) => AnswerText.SameNumber(extracted, reference);
}
