namespace RLMServing.Costs;

/// <summary>
/// Prompt padding as vLLM 0.2.2-0.2.x ran a prefill step (PR #1381, "Change scheduler &amp; input tensor shape"): the
/// worker's prompt input preparation pads every prompt of the step to the longest (<c>_make_tensor_with_pad</c>) into
/// one batch x longest-prompt tensor, which every layer runs, attention included (xformers' block-diagonal causal
/// mask over equal blocks of the padded length, vllm/model_executor/layers/attention.py). So the step costs what a batch of equally long prompts of the longest length costs: every chunk is
/// priced at the longest chunk's tokens. A step with a single prompt, and decode steps, are unchanged. Applied when
/// the scenario sets scheduler.max_paddings (the planner then admits by the padded size).
/// </summary>
public sealed class PaddedPrefillCostModel(ICostModel inner) : ICostModel
{
    public double PeakFlops => inner.PeakFlops;
    public double PeakBandwidth => inner.PeakBandwidth;
    public double FixedStepS => inner.FixedStepS;
    public bool UsesKvSpread => inner.UsesKvSpread;

    public IterationCost Iteration(in BatchShape shape)
    {
        var chunks = shape.Prefills.Span;
        if (chunks.Length < 2) return inner.Iteration(shape);
        int longest = 0;
        foreach (var c in chunks) longest = Math.Max(longest, c.Tokens);
        bool even = true;
        foreach (var c in chunks) even &= c.Tokens == longest;
        if (even) return inner.Iteration(shape);
        var padded = new PrefillChunk[chunks.Length];
        for (int i = 0; i < chunks.Length; i++) padded[i] = chunks[i] with { Tokens = longest };
        return inner.Iteration(shape with { Prefills = padded });
    }

    public IterationCost Decode(int decodeCount, long kvSum, KvSpread spread = default) => inner.Decode(decodeCount, kvSum, spread);
}
