using System.Runtime.CompilerServices;
using RLMServing.Costs;
using RLMServing.Policies;

namespace RLMServing.Simulation.Policies;

/// <summary>
/// The serving policies a replica runs, built from the scenario's <see cref="PolicyConfig"/>. The engine calls the
/// hooks through here: rare hooks go to every policy; the per-iteration ones (speculative steps, the adaptive
/// budget's check, compression scoring) are typed fields, one null test each when the policy is off.
/// </summary>
internal sealed class ServingPolicies
{
    private readonly IServingPolicy[] _all;

    public ServingPolicies(IPolicyHost host, PolicyConfig config)
    {
        Config = config;
        if (config.ThinkingBudget is { Policy: not RLMServing.Policies.ThinkingBudgetPolicy.None } tb) Thinking = new ThinkingBudgetPolicy(host, tb);
        if (config.Compression.Enabled) Compression = new KvCompressionPolicy(host, config.Compression);
        if (config.Speculative is { } spec) Speculative = new SpeculativeDecodingPolicy(host, spec);
        AdaptiveBudget = Thinking is { IsAdaptive: true } ? Thinking : null;
        _all = new IServingPolicy?[] { Thinking, Compression, Speculative }.OfType<IServingPolicy>().ToArray();
        Totals = host.Totals;
    }

    public PolicyConfig Config { get; }
    public PolicyStats Totals { get; }
    public ThinkingBudgetPolicy? Thinking { get; }
    public ThinkingBudgetPolicy? AdaptiveBudget { get; }
    public KvCompressionPolicy? Compression { get; }
    public SpeculativeDecodingPolicy? Speculative { get; }

    /// <summary>Speculative decoding changes every request every step: decode stretches are one iteration long.</summary>
    public bool StepsOneAtATime => Speculative is not null;

    /// <summary>An adaptive budget reads the queue, which arrivals change: decode stretches stop at arrivals.</summary>
    public bool FollowsArrivals => AdaptiveBudget is not null;

    public void OnArrival(SimRequest r) { foreach (var p in _all) p.OnArrival(r); }
    public void OnAdmitted(SimRequest r) { foreach (var p in _all) p.OnAdmitted(r); }
    public void OnSchedulerTurn() { foreach (var p in _all) p.OnSchedulerTurn(); }
    public void OnJoinDecode(SimRequest r) { foreach (var p in _all) p.OnJoinDecode(r); }
    public void OnLeaveDecode(SimRequest r) { foreach (var p in _all) p.OnLeaveDecode(r); }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]   // per decode iteration: with speculative decoding off, one field test
    public void AfterDecodeStep() => Speculative?.AfterDecodeStep();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]   // per decode iteration: with no adaptive budget, one field test
    public bool BudgetWouldMove() => AdaptiveBudget is not null && AdaptiveBudget.WouldMove();

    public bool HasPendingScoring => Compression is not null && Compression.HasPendingScoring;

    public BatchShape WithPendingScoring(BatchShape shape) => Compression is null ? shape : Compression.WithPendingScoring(shape);

    /// <summary>Per iteration: with no policy on, one array-length test.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void OnIteration(double timeS)
    {
        if (_all.Length != 0) OnIterationSlow(timeS);
    }

    private void OnIterationSlow(double timeS) { foreach (var p in _all) p.OnIteration(timeS); }

    /// <summary>What the quality estimates need of a completed request: whether it was compressed, and its thinking budget.</summary>
    public void OnCompleted(SimRequest r)
    {
        // Counts, not sums of doubles: completion order differs between the engines, totals must not.
        Totals.CompletedCount++;
        foreach (var p in _all) p.OnCompleted(r);
        int budget = r.Thinking?.BudgetTokens ?? -1;
        Totals.CompletedByBudget[budget] = Totals.CompletedByBudget.GetValueOrDefault(budget) + 1;
    }

    public void Verify() { foreach (var p in _all) p.Verify(); }
}
