namespace RLMServing.Workloads;

/// <summary>
/// A cap on thinking tokens (<c>max_thinking_tokens</c>). When the model would think longer, thinking stops at the
/// budget and the answer follows unchanged (the "budget forcing" behaviour of reasoning servers); the request is
/// marked as truncated.
/// </summary>
public static class ThinkingBudget
{
    public static (int ThinkingTokens, bool Truncated) Apply(int thinkingTokens, int? maxThinkingTokens)
    {
        if (thinkingTokens < 0) throw new ArgumentOutOfRangeException(nameof(thinkingTokens), "Negative thinking tokens are not allowed");
        if (maxThinkingTokens is not int max) return (thinkingTokens, false);
        if (max < 0) throw new ArgumentOutOfRangeException(nameof(maxThinkingTokens), "A negative thinking budget is not allowed");
        return thinkingTokens > max ? (max, true) : (thinkingTokens, false);
    }

    /// <summary>Applies the budget to a request: thinking is capped, the answer is kept.</summary>
    public static RequestSpec Apply(RequestSpec request, int? maxThinkingTokens)
    {
        var (thinking, truncated) = Apply(request.ThinkingTokens, maxThinkingTokens);
        return truncated ? request with { ThinkingTokens = thinking, ThinkingTruncated = true } : request;
    }
}
