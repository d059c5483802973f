using RLMServing.Scenarios;

namespace RLMServing.Simulation.Batching;

/// <summary>
/// vLLM V1's scheduler (vllm/v1/core/sched/scheduler.py, <c>Scheduler.schedule</c>, 0.10-0.19): one token budget
/// (max_num_batched_tokens) per step, spent first on the running requests — one token per decode, the next chunk
/// of a partial prefill — then on waiting requests in queue order while the budget and max_num_seqs allow, each
/// taking min(its remaining prompt, the budget, long_prefill_token_threshold when set). Chunked prefill is always
/// on, so prefills and decodes share steps. When a running request's next block cannot be allocated, the latest
/// admitted running request is preempted (recompute: it goes back to the front of the queue and its KV is freed),
/// and a step that preempted admits nobody new. Prefix caching (on by default in V1) is the ledger's.
/// Modelled difference: decodes always take their token before any prefill chunk (in V1 a partial prefill ahead of
/// a decode in the running list could exhaust the budget first; with chunks capped by the budget that order arises
/// only when long_prefill_token_threshold splits several prompts at once).
/// </summary>
internal sealed class VllmV1Planner : ChunkedPrefillPlanner
{
    public static BatchingPolicy Policy => BatchingPolicy.VllmV1;

    protected override int MaxChunkTokens(IReplicaScheduler replica) =>
        replica.Config.LongPrefillTokenThreshold > 0 ? replica.Config.LongPrefillTokenThreshold : int.MaxValue;
}
