using System.Threading.Channels;
using RLMServing.Simulation;
using RLMServing.Workloads;

namespace RLMServing.Serve.Engine;

/// <summary>Tokens one iteration released to a request: the first one's index, how many were thinking and answer.</summary>
/// <param name="TimeS">When the iteration that produced them ended, on the engine's clock.</param>
/// <param name="TokenIds">The engine's token ids (the ONNX Runtime engine), or null (the twin has none).</param>
public readonly record struct TokenBatch(int Start, int ReasoningTokens, int AnswerTokens, double TimeS, long[]? TokenIds)
{
    public int Count => ReasoningTokens + AnswerTokens;

    /// <summary>
    /// This batch followed by the next one of the same request, as one: thinking comes before the answer in a
    /// request, so the thinking tokens of both still precede their answer tokens.
    /// </summary>
    public TokenBatch Then(TokenBatch next)
    {
        if (next.Start != Start + Count) throw new ArgumentException($"token {next.Start} does not follow tokens {Start}..{Start + Count - 1}", nameof(next));
        if (AnswerTokens > 0 && next.ReasoningTokens > 0) throw new ArgumentException("thinking after the answer began", nameof(next));
        long[]? ids = TokenIds is null && next.TokenIds is null ? null : [.. TokenIds ?? [], .. next.TokenIds ?? []];
        return new TokenBatch(Start, ReasoningTokens + next.ReasoningTokens, AnswerTokens + next.AnswerTokens, next.TimeS, ids);
    }
}

/// <summary>Why a live request stopped.</summary>
public enum LiveFinish { Stop, Length, Cancelled, Rejected, Shutdown }

/// <summary>How a live request ended: its token counts as usage reports them.</summary>
public sealed record LiveOutcome(LiveFinish Finish, int CompletionTokens, int ReasoningTokens, string? Reason);

/// <summary>
/// One request served live: its spec as submitted, the engine's view of it, and the tokens released so far. The
/// engine thread writes <see cref="Tokens"/> as iterations end; the HTTP handler reads them.
/// </summary>
public sealed class LiveRequest
{
    internal LiveRequest(RequestSpec spec, bool lengthCapped, double arrivalS)
    {
        Spec = spec;
        LengthCapped = lengthCapped;
        ArrivalS = arrivalS;
        Sim = new SimRequest(spec with { ArrivalTimeS = arrivalS }, arrivalS);
    }

    public long Id => Spec.Id;

    /// <summary>The request as submitted (prompt, thinking and answer tokens to generate).</summary>
    public RequestSpec Spec { get; }

    /// <summary>max_tokens cut the drawn output short: the finish reason is <c>length</c>.</summary>
    public bool LengthCapped { get; }

    /// <summary>Arrival on the engine's clock.</summary>
    public double ArrivalS { get; }

    internal SimRequest Sim { get; }

    /// <summary>Released tokens, in order; completed when the request ends.</summary>
    public Channel<TokenBatch> Tokens { get; } = Channel.CreateUnbounded<TokenBatch>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });

    private readonly TaskCompletionSource<LiveOutcome> _outcome = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Set once, after the last token batch.</summary>
    public Task<LiveOutcome> Outcome => _outcome.Task;

    // Engine thread only.
    internal int Emitted;
    internal int EmittedReasoning;
    internal bool InEngine;
    internal volatile bool Cancelled;
    internal double? FirstTokenS;
    internal double LastTokenS;

    internal void End(LiveOutcome outcome)
    {
        Tokens.Writer.TryComplete();
        _outcome.TrySetResult(outcome);
    }
}
