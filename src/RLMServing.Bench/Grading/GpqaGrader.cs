using System.Text.RegularExpressions;

namespace RLMServing.Bench.Grading;

/// <summary>
/// GPQA (multiple choice): the choice letter A-D. Looked for in this order, the last occurrence of each winning:
/// a <c>\boxed{}</c> letter ("\boxed{C}", "\boxed{\text{(C)}}"); "answer is C" / "Answer: (C)" / "answer: **C**";
/// a letter in parentheses "(C)"; a text that is only the letter ("C", "C.", "C)").
/// </summary>
public sealed partial class GpqaGrader : IAnswerGrader
{
    public string Dataset => "gpqa";

    [GeneratedRegex(@"[Aa]nswer(?:\s+is)?\s*[:\s]\s*(?:\*\*)?\(?([A-D])\)?(?:\*\*)?(?![A-Za-z])", RegexOptions.CultureInvariant)]
    private static partial Regex Stated();

    [GeneratedRegex(@"\(([A-D])\)", RegexOptions.CultureInvariant)]
    private static partial Regex Parenthesised();

    [GeneratedRegex(@"^\s*\(?([A-D])[.)]?\s*$", RegexOptions.CultureInvariant)]
    private static partial Regex Alone();

    public string? Reference(string reference) => Letter(reference);

    public string? Extract(string text)
    {
        if (AnswerText.LastBoxed(text) is { } boxed && Letter(AnswerText.Unwrap(boxed, "\\text")) is { } b) return b;
        if (Stated().Matches(text) is { Count: > 0 } stated) return stated[^1].Groups[1].Value;
        if (Parenthesised().Matches(text) is { Count: > 0 } parens) return parens[^1].Groups[1].Value;
        return Alone().Match(text) is { Success: true } alone ? alone.Groups[1].Value : null;
    }

    public bool Same(string extracted, string reference) => extracted == reference;

    private static string? Letter(string text) => Alone().Match(text) is { Success: true } m ? m.Groups[1].Value : null;
}
