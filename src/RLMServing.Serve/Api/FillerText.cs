namespace RLMServing.Serve.Api;

/// <summary>
/// The text of generated tokens: one word and a space per token, so a client that counts words counts tokens.
/// The twin has no token ids, so the word is picked from the request id and position; a real engine's token id picks it
/// directly. Deterministic: the same request gets the same text.
/// </summary>
public static class FillerText
{
    private static readonly string[] Words =
    [
        "the", "model", "thinks", "about", "each", "step", "then", "checks", "its", "work", "and", "answers",
        "with", "care", "so", "every", "token", "counts", "once", "more", "we", "see", "that", "this",
        "holds", "for", "all", "cases", "here", "now", "next", "done",
    ];

    public static string Token(long requestId, int index, long? tokenId = null)
    {
        ulong key = tokenId is { } id ? (ulong)id : Mix((ulong)requestId * 0x9E3779B97F4A7C15UL + (ulong)index);
        return Words[(int)(key % (ulong)Words.Length)] + " ";
    }

    /// <summary>Prompt tokens of a text: its whitespace-separated words (at least one), as the filler text writes tokens.</summary>
    public static int CountTokens(string text)
    {
        int words = 0;
        bool inWord = false;
        foreach (char c in text)
        {
            bool space = char.IsWhiteSpace(c);
            if (!space && !inWord) words++;
            inWord = !space;
        }
        return words;
    }

    private static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
