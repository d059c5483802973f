using RLMServing.Scenarios;

namespace RLMServing.Simulation.Batching;

/// <summary>
/// The batching-policy registry: scenario names (<c>scheduler.batching</c>) to planners. The scenario and cluster
/// loaders, the docs check and the property tests all read it, so a new policy is one planner class and one
/// <see cref="Register"/> line — here, or in a test project.
/// </summary>
public static class BatchPlanners
{
    /// <summary>One registered policy.</summary>
    /// <param name="DecodesShareTokenBudget">
    /// Every iteration carries every running decode inside max_num_batched_tokens, so the budget must be at least
    /// max_num_seqs (the loaders check it).
    /// </param>
    public sealed record Entry(BatchingPolicy Policy, string Description, bool DecodesShareTokenBudget)
    {
        internal Func<IBatchPlanner> Create { get; init; } = () => throw new InvalidOperationException("no planner");
    }

    private static readonly object Gate = new();
    private static Entry[] _entries = [];

    static BatchPlanners()
    {
        Register(BatchingPolicy.Static, "request-level batches: formed from the queue, run to their last member's end", false, () => new StaticBatchPlanner());
        Register(BatchingPolicy.Continuous, "iteration-level batching; prefills (whole prompts) first, never mixed with decodes", false, () => new ContinuousBatchPlanner());
        Register(BatchingPolicy.ChunkedPrefill, "every decode each iteration plus prefill chunks up to max_num_batched_tokens", true, () => new ChunkedPrefillPlanner());
        Register(VllmV1Planner.Policy, "vLLM V1's scheduler: running requests first, then waiting ones, in one token budget; chunks capped by long_prefill_token_threshold", true, () => new VllmV1Planner());
        Register(VllmV0Planner.Policy, "vLLM V0's default scheduler: prefill-first continuous batching, prefills never mixed with decodes", false, () => new VllmV0Planner());
    }

    /// <summary>Every registered policy, in registration order.</summary>
    public static IReadOnlyList<Entry> All => Volatile.Read(ref _entries);

    /// <summary>Adds a policy (or replaces one of the same name). Names are the scenario's spelling: lower case, '_' between words.</summary>
    internal static void Register(BatchingPolicy policy, string description, bool decodesShareTokenBudget, Func<IBatchPlanner> create)
    {
        lock (Gate)
        {
            var entry = new Entry(policy, description, decodesShareTokenBudget) { Create = create };
            var list = _entries.Where(e => e.Policy.Name != policy.Name).ToList();
            list.Add(entry);
            Volatile.Write(ref _entries, list.ToArray());
        }
    }

    /// <summary>The entry for a scenario name (case-insensitive), or null.</summary>
    public static Entry? Find(string name) =>
        All.FirstOrDefault(e => string.Equals(e.Policy.Name, name, StringComparison.OrdinalIgnoreCase));

    public static Entry Get(BatchingPolicy policy) =>
        Find(policy.Name) ?? throw new ArgumentException($"batching policy '{policy.Name}' is not registered");

    internal static IBatchPlanner Create(BatchingPolicy policy) => Get(policy).Create();
}
