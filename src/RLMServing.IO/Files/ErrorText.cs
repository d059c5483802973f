namespace RLMServing.IO.Files;

/// <summary>How an error line quotes what the user gave: a few dozen characters at most, so a huge field stays one short line.</summary>
public static class ErrorText
{
    public const int MaxQuoted = 40;

    public static string Clip(ReadOnlySpan<char> text, int max = MaxQuoted) =>
        text.Length <= max ? text.ToString() : string.Concat(text[..max], $"... ({text.Length:N0} characters)");
}
