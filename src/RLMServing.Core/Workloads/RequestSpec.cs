namespace RLMServing.Workloads;

/// <summary>
/// One request as the simulator receives it: when it arrives and how many tokens it reads and writes.
/// Output = thinking + answer. For closed-loop workloads the arrival time is assigned by the simulator.
/// </summary>
public sealed record RequestSpec(
    long Id,
    double ArrivalTimeS,
    int PromptTokens,
    int ThinkingTokens,
    int AnswerTokens,
    int Priority = 0,
    string? SessionId = null,
    bool ThinkingTruncated = false)
{
    public int OutputTokens => ThinkingTokens + AnswerTokens;
}
