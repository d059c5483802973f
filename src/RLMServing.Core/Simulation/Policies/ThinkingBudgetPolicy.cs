using System.Runtime.CompilerServices;
using RLMServing.Policies;
using RLMServing.Workloads;
using BudgetKind = RLMServing.Policies.ThinkingBudgetPolicy;

namespace RLMServing.Simulation.Policies;

/// <summary>A request's thinking budget: the budget that applied to it and its spec under the ceiling alone.</summary>
internal sealed class ThinkingBudgetState
{
    /// <summary>The budget in force (adaptive: the one in force when its thinking ended).</summary>
    public int? BudgetTokens { get; set; }

    /// <summary>The spec under the ceiling alone, which a restored adaptive budget gives back.</summary>
    public RequestSpec? Capped { get; set; }
}

/// <summary>
/// Thinking budgets (<c>thinking_budget</c>): a static cap applied on arrival (also the ceiling of adaptive
/// budgets), and an adaptive budget per replica that follows the waiting queue and KV usage with hysteresis,
/// re-evaluated at every scheduler turn; when it moves, every admitted request still thinking follows it. A decode
/// stretch stops after the iteration that would move it, so both engines move it on the same decode step.
/// </summary>
internal sealed class ThinkingBudgetPolicy : IServingPolicy
{
    private readonly IPolicyHost _host;
    private readonly ThinkingBudgetConfig _config;
    private readonly ThinkingBudgetConfig? _adaptive;
    private int _budget;   // the adaptive budget in force on this replica

    public ThinkingBudgetPolicy(IPolicyHost host, ThinkingBudgetConfig config)
    {
        _host = host;
        _config = config;
        _adaptive = config is { Policy: BudgetKind.Adaptive, MaxThinkingTokens: not null } ? config : null;
        _budget = _adaptive?.MaxThinkingTokens ?? 0;
    }

    public bool IsAdaptive => _adaptive is not null;

    /// <summary>On arrival: the static cap (also the ceiling of adaptive budgets).</summary>
    public void OnArrival(SimRequest r)
    {
        if (_config is not { MaxThinkingTokens: int cap }) return;
        r.Spec = ThinkingBudget.Apply(r.Spec, cap);
        var state = r.Thinking ??= new ThinkingBudgetState();
        state.Capped ??= r.Spec;   // a request handed to a decode replica keeps what the ceiling alone gave it
        state.BudgetTokens ??= cap;
    }

    public void OnAdmitted(SimRequest r) => FollowBudget(r);

    /// <summary>
    /// Once the batching policy has admitted what it could and before the iteration runs: the replica's adaptive
    /// budget follows the requests left waiting and the KV usage (with hysteresis), and when it moves, every admitted
    /// request that is still thinking follows it. Arrivals admitted at once are no pressure.
    /// </summary>
    public void OnSchedulerTurn()
    {
        if (_adaptive is not { } tb) return;
        int next = tb.Follow(_budget, Target(tb));
        if (next == _budget) return;
        _budget = next;
        var prefilling = _host.Prefilling;
        for (int i = 0; i < prefilling.Count; i++) FollowBudget(prefilling[i]);
        foreach (var r in _host.Decoding.Members) FollowBudget(r);
    }

    /// <summary>Inside a decode stretch: whether the next turn would move the adaptive budget (the stretch stops there).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool WouldMove() => _adaptive is { } tb && tb.Follow(_budget, Target(tb)) != _budget;

    private int Target(ThinkingBudgetConfig tb) => tb.BudgetFor(_host.WaitingCount, _host.Ledger.Usage)!.Value;

    /// <summary>
    /// Gives an admitted request the adaptive budget in force, if it is still thinking: its thinking becomes
    /// min(its thinking under the ceiling, max(budget, tokens already generated)) — a request already past a shrunk
    /// budget stops thinking at its next token (the answer follows in full), a restored budget lets it think on. A
    /// request whose thinking has ended keeps it.
    /// </summary>
    private void FollowBudget(SimRequest r)
    {
        if (_adaptive is null || r.Thinking?.Capped is not { } capped) return;
        int generated = r.GeneratedAt(_host.Dc);
        int current = r.Spec.ThinkingTokens;
        if (generated >= current) return;
        int thinking = Math.Min(capped.ThinkingTokens, Math.Max(_budget, generated));
        if (_host.CheckInvariants && thinking < generated)
            throw new InvalidOperationException($"request {r.Spec.Id}: a budget of {thinking} thinking tokens cuts below the {generated} tokens generated");
        r.Thinking.BudgetTokens = Math.Max(_budget, thinking);
        if (thinking == current) return;
        r.Spec = r.Spec with { ThinkingTokens = thinking, ThinkingTruncated = thinking < capped.ThinkingTokens || capped.ThinkingTruncated };
        // Its end and first answer token moved: re-schedule its events.
        if (r.State == RequestState.Decoding) _host.RescheduleEvents(r);
    }

    public void OnIteration(double timeS)
    {
        if (_adaptive is null) return;
        _host.Totals.BudgetTokenSeconds += _budget * timeS;
        _host.Totals.BudgetSeconds += timeS;
    }

    /// <summary>
    /// Adaptive budgets stay within [floor, ceiling]; every admitted request thinks no more than the ceiling gave it and
    /// no less than the floor or what it had generated, and is marked truncated exactly when its thinking was cut.
    /// </summary>
    public void Verify()
    {
        if (_adaptive is not { } tb) return;
        int max = tb.MaxThinkingTokens!.Value;
        if (_budget < tb.FloorTokens || _budget > max)
            throw new InvalidOperationException($"adaptive thinking budget {_budget} outside [{tb.FloorTokens}, {max}]");
        foreach (var r in _host.Prefilling.Concat(_host.Decoding.Members))
        {
            var capped = r.Thinking!.Capped!;
            int thinking = r.Spec.ThinkingTokens;
            if (thinking > capped.ThinkingTokens || thinking < Math.Min(capped.ThinkingTokens, tb.FloorTokens))
                throw new InvalidOperationException($"request {r.Spec.Id}: {thinking} thinking tokens outside [min(floor, {capped.ThinkingTokens}), {capped.ThinkingTokens}]");
            if (r.Spec.ThinkingTruncated != (thinking < capped.ThinkingTokens || capped.ThinkingTruncated))
                throw new InvalidOperationException($"request {r.Spec.Id}: truncation flag {r.Spec.ThinkingTruncated} with {thinking} of {capped.ThinkingTokens} thinking tokens");
            if (r.Spec.AnswerTokens != capped.AnswerTokens) throw new InvalidOperationException($"request {r.Spec.Id}: a thinking budget changed its answer");
            if (r.Thinking.BudgetTokens is not int b || b < tb.FloorTokens || b > max)
                throw new InvalidOperationException($"request {r.Spec.Id}: thinking budget {r.Thinking.BudgetTokens} outside [{tb.FloorTokens}, {max}]");
        }
    }
}
