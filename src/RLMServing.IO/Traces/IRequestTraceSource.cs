namespace RLMServing.IO.Traces;

/// <summary>Parameters that only some formats use (the ServeGen generator, session context growth).</summary>
public sealed record SourceOptions(int Seed = 0, double? DurationS = null, double StartS = 0, bool? GrowSessionContext = null);

/// <summary>What a source reads with: options, the bad-row policy, and file metadata it may add to.</summary>
public sealed class SourceContext(SourceOptions options, BadRows bad)
{
    public SourceOptions Options { get; } = options;

    public BadRows Bad { get; } = bad;

    public Dictionary<string, string> Metadata { get; } = new(StringComparer.Ordinal);
}

/// <summary>
/// Streams one request-trace format as <see cref="RequestTraceRow"/>s in arrival order. The same stream feeds
/// <c>rlms trace import</c> (to Parquet), <c>rlms trace stats</c> and trace replay in scenarios.
/// </summary>
public interface IRequestTraceSource
{
    string Format { get; }

    string Description { get; }

    /// <summary>A one-line example of the input, for help and docs.</summary>
    string Example { get; }

    IEnumerable<RequestTraceRow> Read(string path, SourceContext context);
}

/// <summary>
/// Multi-turn context growth: when a trace gives each turn's new input only, turn k reads everything before it in its
/// session: prompt_k = new_input_k + Σ_{j&lt;k} (new_input_j + output_j). Turn indexes are assigned either way.
/// </summary>
internal sealed class SessionContext(bool grow)
{
    private readonly Dictionary<string, (long HistoryTokens, int Turns)> _sessions = new(StringComparer.Ordinal);

    public bool Grow { get; } = grow;

    /// <summary>The session rule for one import (option, else the format's default), recorded in the file metadata when the trace has sessions.</summary>
    public static SessionContext For(SourceContext context, int? sessionColumn, bool growByDefault)
    {
        var sessions = new SessionContext(context.Options.GrowSessionContext ?? growByDefault);
        if (sessionColumn is not null) context.Metadata["rlms.session_context"] = sessions.Grow ? "grow" : "as-is";
        return sessions;
    }

    public RequestTraceRow Apply(RequestTraceRow row)
    {
        if (row.SessionId is not { Length: > 0 } id) return row;
        var (history, turns) = _sessions.GetValueOrDefault(id);
        long prompt = Grow ? history + row.PromptTokens : row.PromptTokens;
        _sessions[id] = (history + row.PromptTokens + row.OutputTokens, turns + 1);
        return row with { PromptTokens = (int)Math.Min(prompt, int.MaxValue), TurnIndex = turns };
    }
}
