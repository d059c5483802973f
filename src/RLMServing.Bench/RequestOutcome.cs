using System.Text;

namespace RLMServing.Bench;

/// <summary>Which stream a delta arrived on.</summary>
public enum Channel : byte { Reasoning, Answer }

/// <summary>One streamed delta that carried text: a row of chunks.parquet.</summary>
public readonly record struct ChunkRow(int Sequence, double TimeS, Channel Channel, int Characters);

/// <summary>
/// What the client saw of one request. Times are seconds from the start of the run on the client's monotonic clock;
/// <see cref="Status"/> is completed, failed, timeout or cancelled, and only completed requests enter latency stats.
/// </summary>
public sealed class RequestOutcome(BenchPrompt prompt, int maxTokens, double scheduledS)
{
    public const string Completed = "completed";
    public const string Failed = "failed";
    public const string TimedOut = "timeout";
    public const string Cancelled = "cancelled";

    public BenchPrompt Prompt { get; } = prompt;
    public int MaxTokens { get; } = maxTokens;

    /// <summary>When the schedule said to send it.</summary>
    public double ScheduledS { get; } = scheduledS;

    /// <summary>When the HTTP request was actually started (after any --max-concurrency wait).</summary>
    public double SendS { get; internal set; }

    public double? FirstTokenS { get; internal set; }
    public double? FirstAnswerS { get; internal set; }
    public double? EndS { get; internal set; }
    public string Status { get; internal set; } = Failed;
    public string? Error { get; internal set; }
    public string? FinishReason { get; internal set; }
    public int? HttpStatus { get; internal set; }

    /// <summary>Prompt tokens from the server's usage, else the dataset's count or estimate.</summary>
    public int PromptTokens { get; internal set; } = prompt.PromptTokens;
    public int OutputTokens { get; internal set; }
    public int ThinkingTokens { get; internal set; }

    /// <summary>usage (the server counted both), usage+chunks (output from usage, thinking from chunks) or chunks.</summary>
    public string TokenCountSource { get; internal set; } = "chunks";

    public List<ChunkRow> Chunks { get; } = [];
    internal StringBuilder AnswerText { get; } = new();
    public int ReasoningCharacters { get; internal set; }

    public string OutputText => AnswerText.ToString();

    /// <summary>Reasoning text kept for grading (--evaluate only): the last <see cref="ReasoningTailChars"/> characters.</summary>
    public const int ReasoningTailChars = 16_384;

    private StringBuilder? _reasoningTail;

    /// <summary>
    /// Keeps the end of the reasoning, where a final answer would be, in bounded memory: the buffer is trimmed to the
    /// cap whenever it reaches twice the cap, so each character is copied at most once more.
    /// </summary>
    internal void KeepReasoning(string text)
    {
        _reasoningTail ??= new StringBuilder();
        _reasoningTail.Append(text);
        if (_reasoningTail.Length >= 2 * ReasoningTailChars) _reasoningTail.Remove(0, _reasoningTail.Length - ReasoningTailChars);
    }

    /// <summary>The kept end of the reasoning ("" unless --evaluate kept it).</summary>
    public string ReasoningTail
    {
        get
        {
            if (_reasoningTail is null) return "";
            int skip = Math.Max(0, _reasoningTail.Length - ReasoningTailChars);
            return _reasoningTail.ToString(skip, _reasoningTail.Length - skip);
        }
    }

    /// <summary>--evaluate: the final answer found in the graded text (null: none found, or not graded).</summary>
    public string? AnswerExtracted { get; internal set; }

    /// <summary>--evaluate: whether the answer matched the reference; null when the request was not graded.</summary>
    public bool? Correct { get; internal set; }

    /// <summary>--evaluate: which text was graded: "answer" (content), or "reasoning" when the answer was empty.</summary>
    public string? GradedChannel { get; internal set; }

    public bool IsCompleted => Status == Completed;

    /// <summary>Gaps between successive text-carrying chunks on either channel, in ms (vLLM's ITL).</summary>
    public IEnumerable<double> ItlMs()
    {
        for (int i = 1; i < Chunks.Count; i++) yield return (Chunks[i].TimeS - Chunks[i - 1].TimeS) * 1000;
    }
}
