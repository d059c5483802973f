using RLMServing.Policies;

namespace RLMServing.Simulation.Policies;

/// <summary>A request's speculative decoding: how many speculative steps it has taken (the counter of its acceptance draws).</summary>
internal sealed class SpeculativeState
{
    public long Steps { get; set; }
}

/// <summary>
/// Speculative decoding (<c>speculative</c>: draft, eagle, ngram): after each decode step every request emits its
/// accepted draft tokens beside the step's own token, within its output length and the free KV blocks (a draft
/// token finding no block is dropped, as a rejected one would be). Draws are counter-based per request, so both
/// engines see the same numbers; because every request moves every step, decode stretches are one iteration long.
/// The cost of drafting and verifying is the cost model's (SpeculativeCostModel).
/// </summary>
internal sealed class SpeculativeDecodingPolicy(IPolicyHost host, SpeculativeConfig config) : IServingPolicy
{
    public void AfterDecodeStep()
    {
        int k = config.NumSpeculativeTokens;
        long dc = host.Dc;
        var ledger = host.Ledger;
        var totals = host.Totals;
        foreach (var r in host.Decoding.Members)
        {
            int generated = r.GeneratedAt(dc);
            long kv = r.KvAt(dc);
            var state = r.Speculation ??= new SpeculativeState();
            int extra = SpeculativeAcceptance.AcceptedDraftTokens(host.Seed, r.Spec.Id, state.Steps++, k, config.AcceptanceRate);
            totals.SpecRequestSteps++;
            totals.SpecDraftTokens += k;
            extra = Math.Min(extra, r.Target - generated);
            while (extra > 0 && ledger.BlocksFor(kv + extra) - ledger.BlocksFor(kv) > ledger.FreeBlocks) extra--;
            if (extra <= 0) continue;
            totals.SpecAcceptedDraftTokens += extra;
            // Compression checks count decode steps, not tokens: the scheduled one stays (re-anchoring re-enqueues it).
            host.Reanchor(r, generated + extra, kv + extra);
        }
    }
}
