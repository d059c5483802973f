using RLMServing.Memory;
using RLMServing.Metrics;
using RLMServing.Policies;
using PolicyStats = RLMServing.Simulation.Policies.PolicyStats;

namespace RLMServing.Simulation;

/// <summary>The summary.json fields of the serving policies, from each replica's policy totals.</summary>
internal static class PolicySummary
{
    private const double Gib = 1L << 30;

    public static RunSummary Add(RunSummary summary, PolicyConfig policies, IReadOnlyList<KvCachePlan> plans,
        IReadOnlyList<ReplicaStats> stats, IReadOnlyList<PolicyStats> totals)
    {
        var plan = plans[0];
        double duration = summary.Duration;
        double blockBytes = (double)plan.BlockSize * plan.KvBytesPerToken;
        long completed = totals.Sum(t => t.CompletedCount);
        var meanGib = stats.Select(s => s.KvBlockSeconds * blockBytes / duration / Gib).ToList();
        var meanUncompressed = stats.Zip(totals, (s, t) => (s.KvBlockSeconds * blockBytes + t.EvictedTokenSeconds * plan.KvBytesPerToken) / duration / Gib).ToList();
        var peakUncompressed = stats.Zip(totals, (s, t) => Math.Max(s.PeakBlocks * blockBytes, t.PeakUncompressedTokens * (double)plan.KvBytesPerToken) / Gib);
        long steps = totals.Sum(t => t.SpecRequestSteps), drafts = totals.Sum(t => t.SpecDraftTokens), accepted = totals.Sum(t => t.SpecAcceptedDraftTokens);
        return summary with
        {
            PeakKvCacheGib = stats.Max(s => s.PeakBlocks) * blockBytes / Gib,
            MeanKvCacheGib = meanGib.Average(),
            PeakKvCacheUncompressedGib = peakUncompressed.Max(),
            MeanKvCacheUncompressedGib = meanUncompressed.Average(),
            KvTokensEvicted = totals.Sum(t => t.TokensEvicted),
            EstimatedAccuracyRetention = policies.Compression.Retention is { } retention && completed > 0
                ? (completed - totals.Sum(t => t.CompressedCompleted) + totals.Sum(t => t.CompressedCompleted) * retention.At(policies.Compression.QualityX)) / completed
                : null,
            MeanAcceptedTokensPerStep = policies.Speculative is null ? null : steps == 0 ? 0 : (double)(steps + accepted) / steps,
            SpecDecodeAcceptanceRate = policies.Speculative is null ? null : drafts == 0 ? 0 : (double)accepted / drafts,
            SpeculativeReservedGib = policies.Speculative is null ? null : plans.Max(p => p.SpeculativeReservedBytes / p.TensorParallel) / Gib,
            EstimatedAccuracy = policies.ThinkingBudget?.Accuracy is { } accuracy && completed > 0 ? Accuracy(accuracy, totals) / completed : null,
            MeanThinkingBudget = MeanBudget(policies.ThinkingBudget, totals),
        };
    }

    /// <summary>Static: the cap. Adaptive: each replica's budget in force weighted by its iteration time, over all replicas.</summary>
    private static double? MeanBudget(ThinkingBudgetConfig? tb, IReadOnlyList<PolicyStats> totals)
    {
        if (tb is not { Policy: not ThinkingBudgetPolicy.None, MaxThinkingTokens: int max }) return null;
        double seconds = totals.Sum(t => t.BudgetSeconds);
        if (tb.Policy == ThinkingBudgetPolicy.Static || seconds == 0) return max;
        // Clamped: a weighted mean of budgets in [floor, ceiling] lies there, whatever the rounding of the sums.
        return Math.Clamp(totals.Sum(t => t.BudgetTokenSeconds) / seconds, tb.FloorTokens, max);
    }

    /// <summary>Sum over completed requests of the accuracy at their thinking budget, in budget order (deterministic).</summary>
    private static double Accuracy(QualityEstimate accuracy, IReadOnlyList<PolicyStats> totals)
    {
        var byBudget = new SortedDictionary<int, long>();
        foreach (var t in totals)
            foreach (var (budget, n) in t.CompletedByBudget) byBudget[budget] = byBudget.GetValueOrDefault(budget) + n;
        return byBudget.Sum(kv => kv.Value * (kv.Key < 0 ? accuracy.Unlimited : accuracy.At(kv.Key)));
    }
}
