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
        int budget = replica.Config.MaxNumBatchedTokens;
        while (replica.WaitingCount > 0 && replica.RunningCount < replica.Config.MaxNumSeqs)
        {
            var r = replica.PeekWaiting();
            int tokens = r.PrefillLeft;
            // A prompt longer than the token budget runs alone rather than never.
            if (tokens > budget && replica.PlannedChunks > 0) break;
            if (!replica.TryAdmit(r, tokens)) break;
            if (r.State == RequestState.Decoding) continue;   // swapped back in: decodes, no prefill
            replica.PlanChunk(r, tokens);
            budget -= tokens;
            if (budget <= 0) break;
        }
        return RunPlannedOrDecode(replica, withDecodes: false);
    }
}
