using RLMServing.Scenarios;

namespace RLMServing.Simulation.Batching;

/// <summary>
/// vLLM V0's default scheduler without chunked prefill (vllm/core/scheduler.py, <c>Scheduler._schedule_default</c>,
/// 0.6-0.8): prefills first — waiting requests are admitted in queue order while their whole prompt fits the token
/// budget, max_num_seqs and the KV blocks above the watermark — and a step with prefills runs only prefills; only
/// when none is admitted do the running requests decode one step, preempting the latest admitted request when a
/// decode's next block cannot be allocated (recompute for single-sequence requests, V0's default). The engine's
/// defaults go with it: max_num_batched_tokens = max(max_model_len, 2048) and a 0.01 block watermark.
/// With scheduler.max_paddings set, the prompt batches of vLLM 0.2.2-0.2.x (vllm/core/scheduler.py,
/// <c>Scheduler._schedule</c>, PR #1381): the step's prompts run padded to the longest, so the budget counts
/// prompts x longest prompt, and a prompt whose padding would push the step's past max_paddings waits for the next
/// step (the cost model prices the padded shape, Costs/PaddedPrefillCostModel.cs).
/// </summary>
internal sealed class VllmV0Planner : ContinuousBatchPlanner
{
    public static BatchingPolicy Policy => BatchingPolicy.VllmV0;

    protected override bool Fits(SchedulerConfig config, int prompts, int tokens, int longest)
    {
        if (config.MaxPaddings is not { } maxPaddings) return base.Fits(config, prompts, tokens, longest);
        long padded = (long)prompts * longest;
        return padded <= config.MaxNumBatchedTokens && padded - tokens <= maxPaddings;
    }
}
