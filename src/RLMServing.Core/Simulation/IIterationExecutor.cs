namespace RLMServing.Simulation;

/// <summary>One prefill chunk of an iteration, for a real engine: whose, how many new tokens, after how many cached.</summary>
public readonly record struct ChunkWork(long RequestId, int Tokens, long ContextTokens, bool SamplesToken);

/// <summary>One decode of an iteration: whose, and the KV entries it has before this step (its new token goes there).</summary>
public readonly record struct DecodeWork(long RequestId, long KvTokens);

/// <summary>
/// A real engine behind the simulator's scheduler (rlms replay): instead of pricing an iteration with the cost model,
/// the replica executes it and its clock follows the executor's wall clock. Arrivals become visible when the wall
/// clock reaches them; an idle replica waits. The scheduling decisions are the simulator's own, unchanged.
/// </summary>
public interface IIterationExecutor
{
    /// <summary>Seconds since the start of the run on the executor's clock (monotone).</summary>
    double NowS { get; }

    /// <summary>Blocks until <see cref="NowS"/> reaches <paramref name="timeS"/> (an idle replica waiting for an arrival).</summary>
    void WaitUntil(double timeS);

    /// <summary>Runs one iteration (every chunk, and one step of every decode) and returns <see cref="NowS"/> at its end.</summary>
    double Execute(IReadOnlyList<ChunkWork> chunks, IReadOnlyList<DecodeWork> decodes);

    /// <summary>
    /// The request left the running set: its KV may go. A preempted request (<paramref name="finished"/> false) comes
    /// back later and recomputes its prompt and the tokens it had generated, so those are kept.
    /// </summary>
    void Release(long requestId, bool finished);
}
