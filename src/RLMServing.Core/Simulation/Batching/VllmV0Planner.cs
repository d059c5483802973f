using RLMServing.Scenarios;

namespace RLMServing.Simulation.Batching;

/// <summary>
/// vLLM V0's default scheduler without chunked prefill (vllm/core/scheduler.py, <c>Scheduler._schedule_default</c>,
/// 0.6-0.8): prefills first — waiting requests are admitted in queue order while their whole prompt fits the token
/// budget, max_num_seqs and the KV blocks above the watermark — and a step with prefills runs only prefills; only
/// when none is admitted do the running requests decode one step, preempting the latest admitted request when a
/// decode's next block cannot be allocated (recompute for single-sequence requests, V0's default). The engine's
/// defaults go with it: max_num_batched_tokens = max(max_model_len, 2048) and a 0.01 block watermark.
/// </summary>
internal sealed class VllmV0Planner : ContinuousBatchPlanner
{
    public static BatchingPolicy Policy => BatchingPolicy.VllmV0;
}
