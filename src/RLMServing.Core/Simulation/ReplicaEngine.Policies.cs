using System.Runtime.CompilerServices;
using RLMServing.Costs;
using RLMServing.Policies;
using RLMServing.Workloads;

namespace RLMServing.Simulation;

/// <summary>What the serving policies did on one replica, for summary.json.</summary>
internal sealed class PolicyStats
{
    public long TokensEvicted;
    public long Compressions;
    public double EvictedTokenSeconds;     // evicted-but-live tokens x time: the uncompressed KV the run avoided holding
    public long PeakUncompressedTokens;
    public long CompressedCompleted;       // completed requests that lost tokens to compression
    public SortedDictionary<int, long> CompletedByBudget { get; } = new();   // thinking budget (-1: none) -> completed requests
    public long SpecRequestSteps;
    public long SpecDraftTokens;
    public long SpecAcceptedDraftTokens;
    public long CompletedCount;
    public double BudgetTokenSeconds;      // thinking budget in force x iteration time (adaptive)
    public double BudgetSeconds;
}

/// <summary>
/// The serving policies inside the iteration loop: KV compression, speculative decoding and thinking budgets.
/// They change a decoding request's progress only through <see cref="Reanchor"/>, which moves the request's lazy
/// (affine) progress to a new starting point and re-schedules its decode events, so the fast-forward engine stays
/// exact and O(1) per iteration between policy events:
/// <list type="bullet">
/// <item>compression checks are decode events (every <c>interval</c> steps of a request), in both engines on the same
/// decode counter; a stretch stops at them like at completions;</item>
/// <item>speculative decoding draws each request's accepted length every step, so with it on every decode iteration
/// goes back to the scheduler (O(B) per iteration, like the stepping engine); draws are counter-based, so both engines
/// see the same numbers;</item>
/// <item>thinking budgets act when a request arrives (the cap); an adaptive budget is re-evaluated at every scheduler
/// turn (after its admissions) from the queue and the KV usage, and a stretch stops after the iteration that would
/// move it, so both engines move it on the same decode counter.</item>
/// </list>
/// </summary>
internal sealed partial class ReplicaEngine
{
    private const int CompressEvent = 2;

    private long _evictedLive;              // output tokens evicted from requests still decoding
    private long _pendingScoringPairs;      // compression scoring done at the last turn, priced with the next iteration
    private long _pendingScoringKv;

    private readonly PolicyConfig _policies = PolicyConfig.None;
    private readonly SpeculativeConfig? _speculative;   // cached: read on every decode iteration
    private readonly ThinkingBudgetConfig? _adaptive;   // cached: an adaptive budget is checked on every decode iteration
    private int _thinkingBudget;                        // the adaptive budget in force on this replica

    public PolicyConfig Policies
    {
        get => _policies;
        init
        {
            _policies = value;
            _speculative = value.Speculative;
            _adaptive = value.ThinkingBudget is { Policy: ThinkingBudgetPolicy.Adaptive, MaxThinkingTokens: int max } tb ? tb : null;
            _thinkingBudget = _adaptive?.MaxThinkingTokens ?? 0;
        }
    }

    public int PolicySeed { get; init; }
    public PolicyStats PolicyTotals { get; } = new();

    private CompressionConfig Compression => Policies.Compression;

    /// <summary>Speculative decoding changes every request every step: decode stretches are one iteration long.</summary>
    private bool StepsOneAtATime => _speculative is not null;

    // ---- thinking budgets ------------------------------------------------------------------------

    /// <summary>On arrival: the static cap (also the ceiling of adaptive budgets).</summary>
    private void ApplyThinkingCap(SimRequest r)
    {
        if (Policies.ThinkingBudget is not { Policy: not ThinkingBudgetPolicy.None, MaxThinkingTokens: int cap }) return;
        r.Spec = ThinkingBudget.Apply(r.Spec, cap);
        r.CappedSpec ??= r.Spec;   // a request handed to a decode replica keeps what the ceiling alone gave it
        r.ThinkingBudgetTokens ??= cap;
    }

    private double KvUsage => (double)_usedBlocks / TotalBlocks;

    private int AdaptiveTarget(ThinkingBudgetConfig tb) => tb.BudgetFor(_waiting.Count, KvUsage)!.Value;

    /// <summary>
    /// At every scheduler turn, once the batching policy has admitted what it could and before the iteration runs: the
    /// replica's adaptive budget follows the requests left waiting and the KV usage (with hysteresis), and when it
    /// moves, every admitted request that is still thinking follows it. Arrivals admitted at once are no pressure.
    /// </summary>
    private void FollowLoad()
    {
        if (_adaptive is not { } tb) return;
        int next = tb.Follow(_thinkingBudget, AdaptiveTarget(tb));
        if (next == _thinkingBudget) return;
        _thinkingBudget = next;
        foreach (var r in _prefilling) FollowBudget(r);
        foreach (var r in _decoding) FollowBudget(r);
    }

    /// <summary>Inside a decode stretch: whether the next turn would move the adaptive budget (the stretch stops there).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]   // per decode iteration: with no adaptive budget, one field test
    private bool BudgetWouldMove() => _adaptive is not null && AdaptiveBudgetWouldMove(_adaptive);

    private bool AdaptiveBudgetWouldMove(ThinkingBudgetConfig tb) => tb.Follow(_thinkingBudget, AdaptiveTarget(tb)) != _thinkingBudget;

    /// <summary>
    /// Gives an admitted request the adaptive budget in force, if it is still thinking: its thinking becomes
    /// min(its thinking under the ceiling, max(budget, tokens already generated)) — a request already past a shrunk
    /// budget stops thinking at its next token (the answer follows in full), a restored budget lets it think on. A
    /// request whose thinking has ended keeps it.
    /// </summary>
    private void FollowBudget(SimRequest r)
    {
        if (_adaptive is null || r.CappedSpec is not { } capped) return;
        int generated = r.State == RequestState.Decoding ? r.GeneratedAt(_dc) : r.Generated;
        int current = r.Spec.ThinkingTokens;
        if (generated >= current) return;
        int thinking = Math.Min(capped.ThinkingTokens, Math.Max(_thinkingBudget, generated));
        if (CheckInvariants && thinking < generated)
            throw new InvalidOperationException($"request {r.Spec.Id}: a budget of {thinking} thinking tokens cuts below the {generated} tokens generated");
        r.ThinkingBudgetTokens = Math.Max(_thinkingBudget, thinking);
        if (thinking == current) return;
        r.Spec = r.Spec with { ThinkingTokens = thinking, ThinkingTruncated = thinking < capped.ThinkingTokens || capped.ThinkingTruncated };
        if (r.State != RequestState.Decoding) return;
        // Its end and first answer token moved: re-schedule its events (and a compression check its old end had dropped).
        r.Version++;
        if (Compression.Enabled) ScheduleCompression(r, r.CompressCheckDc);
        if (_fastForward) EnqueueDecodeEvents(r);
    }

    // ---- decode progress -------------------------------------------------------------------------

    /// <summary>
    /// Moves a decoding request to <paramref name="generated"/> tokens and <paramref name="kv"/> KV entries at the
    /// current decode counter, in place (its slot in the decode set is kept), adjusting the KV sum, the block-phase
    /// histogram and the allocator, and re-scheduling its completion and milestone events.
    /// </summary>
    private void Reanchor(SimRequest r, int generated, long kv)
    {
        long oldKv = r.KvAt(_dc);
        _phaseCount[Phase(r)]--;
        _kvSum += kv - oldKv;
        _usedBlocks += BlocksFor(kv) - BlocksFor(oldKv);
        TrimPrefixCache();   // accepted draft tokens take blocks: cached free ones are evicted first
        r.JoinDc = _dc;
        r.GenAtJoin = generated;
        r.KvAtJoin = kv;
        r.Version++;
        _phaseCount[Phase(r)]++;
        r.NaiveGenerated = generated;
        r.NaiveKv = kv;
        if (_fastForward) EnqueueDecodeEvents(r);
    }

    /// <summary>Completion, first-answer and compression events of a decoding request, from its lazy progress.</summary>
    private void EnqueueDecodeEvents(SimRequest r)
    {
        _decodeEvents.Enqueue((r, r.Version, FinishEvent), (r.JoinDc + r.Target - r.GenAtJoin, r.AdmitSeq));
        int answerAt = r.Spec.ThinkingTokens + 1;
        if (r.FirstAnswerS is null)
            _decodeEvents.Enqueue((r, r.Version, AnswerEvent), (r.JoinDc + answerAt - r.GenAtJoin, r.AdmitSeq));
        if (r.NextCompressDc != long.MaxValue)
            _decodeEvents.Enqueue((r, r.Version, CompressEvent), (r.NextCompressDc, r.AdmitSeq));
    }

    /// <summary>A request joins the decode set: after its prefill its KV is whole again; its first check is scheduled.</summary>
    private void OnJoinDecode(SimRequest r)
    {
        // Swapped back in, the KV is what was swapped out: what compression evicted before stays evicted.
        r.EvictedLive = r.SwappedEvicted;
        _evictedLive += r.SwappedEvicted;
        r.SwappedEvicted = 0;
        r.NextCompressDc = long.MaxValue;
        if (!Compression.Enabled) return;
        long outKv = r.KvAtJoin - r.Spec.PromptTokens;
        // Fixed targets: the first check when the output KV reaches target + interval; ratio: every interval steps.
        long delay = Compression.Policy == CompressionPolicy.Ratio
            ? Compression.IntervalSteps
            : Math.Max(1, Compression.BudgetTokens + Compression.IntervalSteps - outKv);
        ScheduleCompression(r, r.JoinDc + delay);
    }

    private void ScheduleCompression(SimRequest r, long dc)
    {
        r.CompressCheckDc = dc;
        long finishDc = r.JoinDc + r.Target - r.GenAtJoin;
        r.NextCompressDc = dc < finishDc ? dc : long.MaxValue;   // a request that ends first is never compressed there
    }

    /// <summary>Cuts a request's output KV back to the policy's target (never below it, never growing it).</summary>
    private void Compress(SimRequest r)
    {
        long kv = r.KvAt(_dc);
        int generated = r.GeneratedAt(_dc);
        if (generated >= r.Target) return;   // finishing at this step: its completion comes first, in both engines
        int prompt = r.Spec.PromptTokens;
        long outKv = kv - prompt;
        long outLogical = generated - 1;   // output tokens with KV entries (the newest is fed at the next step)
        int thinking = (int)Math.Min(outLogical, r.Spec.ThinkingTokens);
        int answer = (int)(outLogical - thinking);
        long target = Compression.TargetOutputKv(outKv, thinking, answer);
        long evict = outKv - target;
        if (evict > 0)
        {
            if (CheckInvariants && (target < 0 || prompt + target > kv))
                throw new InvalidOperationException($"compression of request {r.Spec.Id} from {kv} to {prompt + target} KV entries breaks its floor");
            long pairs = Compression.ScoringPairs(kv, prompt + target);
            if (pairs > 0) { _pendingScoringPairs += pairs; _pendingScoringKv += kv; }
            r.EvictedLive += evict;
            r.EvictedTotal += evict;
            _evictedLive += evict;
            PolicyTotals.TokensEvicted += evict;
            PolicyTotals.Compressions++;
            r.NextCompressDc = long.MaxValue;
            Reanchor(r, generated, prompt + target);
        }
        ScheduleCompression(r, _dc + Compression.IntervalSteps);
        if (_fastForward && r.NextCompressDc != long.MaxValue)
            _decodeEvents.Enqueue((r, r.Version, CompressEvent), (r.NextCompressDc, r.AdmitSeq));
    }

    /// <summary>Reference mode: compression checks found by looking at every decoding request.</summary>
    private void ScanForCompressions()
    {
        if (!Compression.Enabled) return;
        foreach (var r in _decoding)
            if (r.NextCompressDc <= _dc) Compress(r);
    }

    /// <summary>Evicted tokens of a request leaving the decode set stop counting (finished, or rebuilt by recompute).</summary>
    private void OnLeaveDecode(SimRequest r)
    {
        _evictedLive -= r.EvictedLive;
        r.EvictedLive = 0;
    }

    /// <summary>
    /// After a decode step: speculative decoding emits each request's accepted draft tokens beside the step's own
    /// token, within the request's output length and the free KV blocks (a draft token finding no block is dropped,
    /// as a rejected one would be).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]   // per decode iteration: with speculative decoding off, one field test
    private void AfterDecodeStep()
    {
        if (_speculative is not null) AcceptDraftTokens(_speculative);
    }

    private void AcceptDraftTokens(SpeculativeConfig spec)
    {
        int k = spec.NumSpeculativeTokens;
        foreach (var r in _decoding)
        {
            int generated = r.GeneratedAt(_dc);
            long kv = r.KvAt(_dc);
            int extra = SpeculativeAcceptance.AcceptedDraftTokens(PolicySeed, r.Spec.Id, r.SpecSteps++, k, spec.AcceptanceRate);
            PolicyTotals.SpecRequestSteps++;
            PolicyTotals.SpecDraftTokens += k;
            extra = Math.Min(extra, r.Target - generated);
            while (extra > 0 && BlocksFor(kv + extra) - BlocksFor(kv) > FreeBlocks) extra--;
            if (extra <= 0) continue;
            PolicyTotals.SpecAcceptedDraftTokens += extra;
            // Compression checks count decode steps, not tokens: the scheduled one stays (Reanchor re-enqueues it).
            Reanchor(r, generated + extra, kv + extra);
        }
    }

    // ---- cost and accounting ---------------------------------------------------------------------

    /// <summary>
    /// A decode-only iteration's cost, with the scoring of compressions done since the last iteration; on a real
    /// executor, with its measured time. Not inlined, and each path returns a call's result as it is: the decode loop's
    /// cost is then written in place (merging the paths inside the loop copied it through a temporary every iteration).
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private IterationCost DecodeCost(int decodes, long kvSum, double startS)
    {
        if (_pendingScoringKv == 0 && _executor is null) return _cost.Decode(decodes, kvSum);
        return ScoredOrExecutedDecodeCost(decodes, kvSum, startS);
    }

    private IterationCost ScoredOrExecutedDecodeCost(int decodes, long kvSum, double startS)
    {
        var priced = _pendingScoringKv == 0 ? _cost.Decode(decodes, kvSum) : _cost.Iteration(WithPendingScoring(BatchShape.DecodeOnly(decodes, kvSum)));
        return _executor is null ? priced : Execute(priced, startS, withChunks: false, withDecodes: true);
    }

    private BatchShape WithPendingScoring(BatchShape shape)
    {
        if (_pendingScoringKv == 0) return shape;
        var scored = shape with { ScoringPairs = _pendingScoringPairs, ScoringKvTokens = _pendingScoringKv };
        _pendingScoringPairs = 0;
        _pendingScoringKv = 0;
        return scored;
    }

    /// <summary>Per iteration: with no adaptive budget and no evicted tokens, one field test each.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void AccountPolicies(double timeS)
    {
        if (_adaptive is not null || _evictedLive != 0) AccountActivePolicies(timeS);
    }

    private void AccountActivePolicies(double timeS)
    {
        if (_adaptive is not null)
        {
            PolicyTotals.BudgetTokenSeconds += _thinkingBudget * timeS;
            PolicyTotals.BudgetSeconds += timeS;
        }
        if (_evictedLive == 0) return;
        PolicyTotals.EvictedTokenSeconds += _evictedLive * timeS;
        long uncompressed = _usedBlocks * BlockSize + _evictedLive;
        if (uncompressed > PolicyTotals.PeakUncompressedTokens) PolicyTotals.PeakUncompressedTokens = uncompressed;
    }

    /// <summary>What the quality estimates need from a completed request: whether it was compressed, and its thinking budget.</summary>
    private void OnCompleted(SimRequest r)
    {
        if (r.RejectReason is not null) return;
        if (CheckInvariants && r.Generated != r.Target)
            throw new InvalidOperationException($"request {r.Spec.Id} completed with {r.Generated} tokens, asked for {r.Target}");
        // Counts, not sums of doubles: completion order differs between the engines, totals must not.
        PolicyTotals.CompletedCount++;
        if (r.EvictedTotal > 0) PolicyTotals.CompressedCompleted++;
        int budget = r.ThinkingBudgetTokens ?? -1;
        PolicyTotals.CompletedByBudget[budget] = PolicyTotals.CompletedByBudget.GetValueOrDefault(budget) + 1;
    }

    /// <summary>Checked every turn in tests: a decoding request's KV is its prompt and output minus what was evicted.</summary>
    private void VerifyPolicies()
    {
        long live = 0;
        foreach (var r in _decoding)
        {
            long logical = r.Spec.PromptTokens + r.GeneratedAt(_dc) - 1;
            if (r.KvAt(_dc) + r.EvictedLive != logical)
                throw new InvalidOperationException($"request {r.Spec.Id}: KV {r.KvAt(_dc)} + evicted {r.EvictedLive} != prompt + output {logical}: evicted tokens are being read");
            if (r.KvAt(_dc) < r.Spec.PromptTokens) throw new InvalidOperationException($"request {r.Spec.Id}: compression evicted prompt tokens");
            // The policy's floor, from the request's progress alone: what a compression right now would keep.
            long outLogical = logical - r.Spec.PromptTokens;
            int thinking = (int)Math.Min(outLogical, r.Spec.ThinkingTokens);
            long floor = Compression.TargetOutputKv(outLogical, thinking, (int)(outLogical - thinking));
            if (r.KvAt(_dc) - r.Spec.PromptTokens < floor)
                throw new InvalidOperationException($"request {r.Spec.Id}: {r.KvAt(_dc) - r.Spec.PromptTokens} output KV entries kept, below the policy's floor of {floor}");
            live += r.EvictedLive;
        }
        if (_adaptive is { } tb) VerifyAdaptiveBudgets(tb);
        if (live != _evictedLive) throw new InvalidOperationException($"evicted tokens of live requests {live} != running count {_evictedLive}");
    }

    /// <summary>
    /// Adaptive budgets stay within [floor, ceiling]; every admitted request thinks no more than the ceiling gave it and
    /// no less than the floor or what it had generated, and is marked truncated exactly when its thinking was cut.
    /// </summary>
    private void VerifyAdaptiveBudgets(ThinkingBudgetConfig tb)
    {
        int max = tb.MaxThinkingTokens!.Value;
        if (_thinkingBudget < tb.FloorTokens || _thinkingBudget > max)
            throw new InvalidOperationException($"adaptive thinking budget {_thinkingBudget} outside [{tb.FloorTokens}, {max}]");
        foreach (var r in _prefilling.Concat(_decoding))
        {
            var capped = r.CappedSpec!;
            int thinking = r.Spec.ThinkingTokens;
            if (thinking > capped.ThinkingTokens || thinking < Math.Min(capped.ThinkingTokens, tb.FloorTokens))
                throw new InvalidOperationException($"request {r.Spec.Id}: {thinking} thinking tokens outside [min(floor, {capped.ThinkingTokens}), {capped.ThinkingTokens}]");
            if (r.Spec.ThinkingTruncated != (thinking < capped.ThinkingTokens || capped.ThinkingTruncated))
                throw new InvalidOperationException($"request {r.Spec.Id}: truncation flag {r.Spec.ThinkingTruncated} with {thinking} of {capped.ThinkingTokens} thinking tokens");
            if (r.Spec.AnswerTokens != capped.AnswerTokens) throw new InvalidOperationException($"request {r.Spec.Id}: a thinking budget changed its answer");
            if (r.ThinkingBudgetTokens is not int b || b < tb.FloorTokens || b > max)
                throw new InvalidOperationException($"request {r.Spec.Id}: thinking budget {r.ThinkingBudgetTokens} outside [{tb.FloorTokens}, {max}]");
        }
    }
}
