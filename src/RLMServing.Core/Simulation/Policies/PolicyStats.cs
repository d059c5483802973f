namespace RLMServing.Simulation.Policies;

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
