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

    public bool IsCompleted => Status == Completed;

    /// <summary>Gaps between successive text-carrying chunks on either channel, in ms (vLLM's ITL).</summary>
    public IEnumerable<double> ItlMs()
    {
        for (int i = 1; i < Chunks.Count; i++) yield return (Chunks[i].TimeS - Chunks[i - 1].TimeS) * 1000;
    }
}
