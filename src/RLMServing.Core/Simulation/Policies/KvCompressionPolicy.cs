using RLMServing.Costs;
using RLMServing.Policies;

namespace RLMServing.Simulation.Policies;

/// <summary>A request's KV compression: its next check and the output tokens evicted from its KV.</summary>
internal sealed class KvCompressionState
{
    /// <summary>Decode step of the next check before capping at the request's end (re-capped when its length moves).</summary>
    public long CheckDc { get; set; } = long.MaxValue;

    /// <summary>Decode step of the next check; long.MaxValue when none (the request ends first).</summary>
    public long NextCheckDc { get; set; } = long.MaxValue;

    /// <summary>Output tokens evicted and not rebuilt since (a recompute rebuilds them).</summary>
    public long EvictedLive { get; set; }

    public long EvictedTotal { get; set; }

    /// <summary>Evicted before a swap-out: the swapped KV comes back without them.</summary>
    public long SwappedEvicted { get; set; }
}

/// <summary>
/// KV-cache compression during decode (<c>kv_cache.compression</c>: streaming, budget, ratio, rkv): every
/// <c>interval</c> decode steps a request's output KV is cut back to the policy's target. Checks are decode events
/// (a stretch stops at them like at completions) in both engines on the same decode step; a cut re-anchors the
/// request. The scoring work of the cuts done at a turn is priced with the next iteration.
/// </summary>
internal sealed class KvCompressionPolicy(IPolicyHost host, CompressionConfig config) : IServingPolicy
{
    private long _evictedLive;              // output tokens evicted from requests still decoding
    private long _pendingScoringPairs;      // scoring done at the last turn, priced with the next iteration
    private long _pendingScoringKv;

    public bool HasPendingScoring => _pendingScoringKv != 0;

    public static long EvictedLive(SimRequest r) => r.Compression?.EvictedLive ?? 0;

    /// <summary>A request joins the decode set: after its prefill its KV is whole again; its first check is scheduled.</summary>
    public void OnJoinDecode(SimRequest r)
    {
        var state = r.Compression ??= new KvCompressionState();
        // Swapped back in, the KV is what was swapped out: what compression evicted before stays evicted.
        state.EvictedLive = state.SwappedEvicted;
        _evictedLive += state.SwappedEvicted;
        state.SwappedEvicted = 0;
        state.NextCheckDc = long.MaxValue;
        long outKv = r.KvAtJoin - r.Spec.PromptTokens;
        // Fixed targets: the first check when the output KV reaches target + interval; ratio: every interval steps.
        long delay = config.Policy == CompressionPolicy.Ratio
            ? config.IntervalSteps
            : Math.Max(1, config.BudgetTokens + config.IntervalSteps - outKv);
        Schedule(r, state, r.JoinDc + delay);
    }

    /// <summary>The request's end moved (a thinking budget): its scheduled check is re-capped at the new end.</summary>
    public void Reschedule(SimRequest r) => Schedule(r, r.Compression!, r.Compression!.CheckDc);

    public static long NextCheckDc(SimRequest r) => r.Compression?.NextCheckDc ?? long.MaxValue;

    private static void Schedule(SimRequest r, KvCompressionState state, long dc)
    {
        state.CheckDc = dc;
        long finishDc = r.JoinDc + r.Target - r.GenAtJoin;
        state.NextCheckDc = dc < finishDc ? dc : long.MaxValue;   // a request that ends first is never compressed there
    }

    /// <summary>Cuts a request's output KV back to the policy's target (never below it, never growing it).</summary>
    public void Compress(SimRequest r)
    {
        long dc = host.Dc;
        var state = r.Compression!;
        long kv = r.KvAt(dc);
        int generated = r.GeneratedAt(dc);
        if (generated >= r.Target) return;   // finishing at this step: its completion comes first, in both engines
        int prompt = r.Spec.PromptTokens;
        long outKv = kv - prompt;
        long outLogical = generated - 1;   // output tokens with KV entries (the newest is fed at the next step)
        int thinking = (int)Math.Min(outLogical, r.Spec.ThinkingTokens);
        int answer = (int)(outLogical - thinking);
        long target = config.TargetOutputKv(outKv, thinking, answer);
        long evict = outKv - target;
        if (evict > 0)
        {
            if (host.CheckInvariants && (target < 0 || prompt + target > kv))
                throw new InvalidOperationException($"compression of request {r.Spec.Id} from {kv} to {prompt + target} KV entries breaks its floor");
            long pairs = config.ScoringPairs(kv, prompt + target);
            if (pairs > 0) { _pendingScoringPairs += pairs; _pendingScoringKv += kv; }
            state.EvictedLive += evict;
            state.EvictedTotal += evict;
            _evictedLive += evict;
            host.Totals.TokensEvicted += evict;
            host.Totals.Compressions++;
            state.NextCheckDc = long.MaxValue;
            host.Reanchor(r, generated, prompt + target);
        }
        Schedule(r, state, dc + config.IntervalSteps);
        if (state.NextCheckDc != long.MaxValue) host.ScheduleEvent(r, Engine.DecodeEventKind.Compress, state.NextCheckDc);
    }

    /// <summary>Reference mode: compression checks found by looking at every decoding request.</summary>
    public void ScanForChecks()
    {
        long dc = host.Dc;
        foreach (var r in host.Decoding.Members)
            if (NextCheckDc(r) <= dc) Compress(r);
    }

    /// <summary>Evicted tokens of a request leaving the decode set stop counting (finished, or rebuilt by recompute).</summary>
    public void OnLeaveDecode(SimRequest r)
    {
        if (r.Compression is not { } state) return;
        _evictedLive -= state.EvictedLive;
        state.EvictedLive = 0;
    }

    /// <summary>A preempted request's KV went to host memory with <paramref name="evicted"/> tokens already cut from it.</summary>
    public static void OnSwappedOut(SimRequest r, long evicted)
    {
        if (r.Compression is { } state) state.SwappedEvicted = evicted;
    }

    /// <summary>The scoring of the cuts since the last iteration, added to this iteration's shape (and cleared).</summary>
    public BatchShape WithPendingScoring(BatchShape shape)
    {
        if (_pendingScoringKv == 0) return shape;
        var scored = shape with { ScoringPairs = _pendingScoringPairs, ScoringKvTokens = _pendingScoringKv };
        _pendingScoringPairs = 0;
        _pendingScoringKv = 0;
        return scored;
    }

    public void OnIteration(double timeS)
    {
        if (_evictedLive == 0) return;
        host.Totals.EvictedTokenSeconds += _evictedLive * timeS;
        long uncompressed = host.Ledger.UsedBlocks * host.Ledger.BlockSize + _evictedLive;
        if (uncompressed > host.Totals.PeakUncompressedTokens) host.Totals.PeakUncompressedTokens = uncompressed;
    }

    public void OnCompleted(SimRequest r)
    {
        if (r.Compression is { EvictedTotal: > 0 }) host.Totals.CompressedCompleted++;
    }

    /// <summary>No request keeps fewer output KV entries than the policy's floor; the running count of evicted tokens matches the requests.</summary>
    public void Verify()
    {
        long live = 0;
        long dc = host.Dc;
        foreach (var r in host.Decoding.Members)
        {
            long logical = r.Spec.PromptTokens + r.GeneratedAt(dc) - 1;
            // The policy's floor, from the request's progress alone: what a compression right now would keep.
            long outLogical = logical - r.Spec.PromptTokens;
            int thinking = (int)Math.Min(outLogical, r.Spec.ThinkingTokens);
            long floor = config.TargetOutputKv(outLogical, thinking, (int)(outLogical - thinking));
            if (r.KvAt(dc) - r.Spec.PromptTokens < floor)
                throw new InvalidOperationException($"request {r.Spec.Id}: {r.KvAt(dc) - r.Spec.PromptTokens} output KV entries kept, below the policy's floor of {floor}");
            live += EvictedLive(r);
        }
        if (live != _evictedLive) throw new InvalidOperationException($"evicted tokens of live requests {live} != running count {_evictedLive}");
    }
}
