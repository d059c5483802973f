using RLMServing.Scenarios;

namespace RLMServing.Simulation.Batching;

/// <summary>
/// Continuous batching without chunked prefill (Orca; vLLM V0's default scheduler): an iteration runs the waiting
/// prefills that fit (whole prompts, within max_num_batched_tokens and max_num_seqs), and only when none does, one
/// decode step of every running request. Prefills and decodes never share an iteration.
/// </summary>
internal class ContinuousBatchPlanner : BatchPlanner
{
    public override bool Step(IReplicaScheduler replica)
    {
        var config = replica.Config;
        int count = 0, sum = 0, longest = 0;
        while (replica.WaitingCount > 0 && replica.RunningCount < config.MaxNumSeqs)
        {
            var r = replica.PeekWaiting();
            int tokens = r.PrefillLeft;
            // A prompt longer than the token budget runs alone rather than never.
            if (replica.PlannedChunks > 0 && !Fits(config, count + 1, sum + tokens, Math.Max(longest, tokens))) break;
            if (!replica.TryAdmit(r, tokens)) break;
            if (r.State == RequestState.Decoding) continue;   // swapped back in: decodes, no prefill
            replica.PlanChunk(r, tokens);
            count++;
            sum += tokens;
            longest = Math.Max(longest, tokens);
            if (sum >= config.MaxNumBatchedTokens) break;
        }
        return RunPlannedOrDecode(replica, withDecodes: false);
    }

    /// <summary>Whether a prefill step of <paramref name="prompts"/> whole prompts may run together.</summary>
    /// <param name="tokens">Their prompt tokens.</param>
    /// <param name="longest">The longest of them.</param>
    protected virtual bool Fits(SchedulerConfig config, int prompts, int tokens, int longest) => tokens <= config.MaxNumBatchedTokens;
}
