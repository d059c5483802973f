namespace RLMServing.Simulation.Batching;

/// <summary>
/// Chunked prefill (Sarathi-Serve): every iteration carries one step of every running decode, then prefill chunks
/// of the admitted and the waiting requests up to max_num_batched_tokens, so long prompts never stall decodes.
/// </summary>
internal class ChunkedPrefillPlanner : BatchPlanner
{
    /// <summary>The most prefill tokens one request may take in one iteration (no cap here).</summary>
    protected virtual int MaxChunkTokens(IReplicaScheduler replica) => int.MaxValue;

    public override bool Step(IReplicaScheduler replica)
    {
        int cap = MaxChunkTokens(replica);
        // Running decodes are scheduled first (preempting if KV is full); prefill chunks get what is left.
        // As vLLM V1: a step that had to preempt admits nobody new (the victim would come straight back).
        bool preempted = replica.EnsureDecodeBlocks();
        long reserved = replica.DecodingCount > 0 ? replica.DecodeBlocksNeeded() : 0;
        int budget = replica.Config.MaxNumBatchedTokens - replica.DecodingCount;
        var prefilling = replica.Prefilling;
        for (int i = 0; i < prefilling.Count; i++)
        {
            var r = prefilling[i];
            if (budget <= 0) break;
            int chunk = Math.Min(Math.Min(r.PrefillTarget - r.Prefilled, budget), cap);
            if (!replica.TryPlanChunk(r, chunk, reserved)) break;
            budget -= chunk;
        }
        while (!preempted && budget > 0 && replica.WaitingCount > 0 && replica.RunningCount < replica.Config.MaxNumSeqs
               && replica.PlannedChunks == replica.Prefilling.Count)
        {
            var r = replica.PeekWaiting();
            int chunk = Math.Min(Math.Min(r.PrefillLeft, budget), cap);
            if (!replica.TryAdmit(r, chunk, reserved)) break;
            if (r.State == RequestState.Decoding)
            {
                // Swapped back in: it decodes in this iteration, so its next block is reserved and it takes a token.
                reserved = replica.DecodeBlocksNeeded();
                budget--;
                continue;
            }
            replica.PlanChunk(r, chunk);
            budget -= chunk;
        }
        return RunPlannedOrDecode(replica, withDecodes: true, justPreempted: preempted);
    }
}
