using MathNet.Numerics.Statistics;

namespace RLMServing.Metrics;

/// <summary>Per-replica totals the summary needs besides the request rows.</summary>
public sealed record ReplicaTotals(double BusyS, double Flops, double Bytes, long Iterations, long BatchRequestsSum,
    double KvBlockSeconds, long PeakBlocks, long TotalBlocks, long Preemptions, double PeakFlops, double PeakBandwidth);

/// <summary>Turns request rows, the ITL sketch and replica totals into summary.json.</summary>
public static class SummaryBuilder
{
    public static RunSummary Build(RunSummary identity, IReadOnlyList<RequestRecord> records, QuantileSketch itl,
        IReadOnlyList<ReplicaTotals> replicas, Scenarios.SloConfig slo, int maxNumSeqs)
    {
        var done = records.Where(r => r.Status == RequestStatus.Completed).ToList();
        double start = records.Count == 0 ? 0 : records.Min(r => r.ArrivalTimeS);
        double end = done.Count == 0 ? start : done.Max(r => r.CompletionTimeS!.Value);
        double duration = Math.Max(end - start, 1e-12);
        long input = done.Sum(r => (long)r.PromptTokens), output = done.Sum(r => (long)r.OutputTokens);
        var ttft = Sorted(done.Select(r => r.TtftMs!.Value));
        var tpot = Sorted(done.Where(r => r.TpotMs is not null).Select(r => r.TpotMs!.Value));
        var e2el = Sorted(done.Select(r => r.E2elMs!.Value));
        var ttfat = Sorted(done.Where(r => r.TtfatMs is not null).Select(r => r.TtfatMs!.Value));
        int good = done.Count(r => MeetsSlo(r, slo));
        double busy = replicas.Sum(r => r.BusyS);
        long iterations = replicas.Sum(r => r.Iterations);
        var (unstable, reason) = Stability(records, maxNumSeqs * replicas.Count);
        return identity with
        {
            Completed = done.Count,
            Failed = records.Count - done.Count,
            Rejected = records.Count - done.Count,
            Duration = duration,
            TotalInputTokens = input,
            TotalOutputTokens = output,
            RequestThroughput = done.Count / duration,
            RequestGoodput = slo.IsSet ? good / duration : null,
            OutputThroughput = output / duration,
            TotalTokenThroughput = (input + output) / duration,
            MeanTtftMs = Mean(ttft), MedianTtftMs = Q(ttft, 0.5), StdTtftMs = Std(ttft), P90TtftMs = Q(ttft, 0.9), P99TtftMs = Q(ttft, 0.99),
            MeanTpotMs = Mean(tpot), MedianTpotMs = Q(tpot, 0.5), StdTpotMs = Std(tpot), P90TpotMs = Q(tpot, 0.9), P99TpotMs = Q(tpot, 0.99),
            MeanItlMs = Z(itl.Mean), MedianItlMs = Z(itl.Quantile(0.5)), StdItlMs = Z(itl.Std), P90ItlMs = Z(itl.Quantile(0.9)), P99ItlMs = Z(itl.Quantile(0.99)),
            MeanE2elMs = Mean(e2el), MedianE2elMs = Q(e2el, 0.5), StdE2elMs = Std(e2el), P90E2elMs = Q(e2el, 0.9), P99E2elMs = Q(e2el, 0.99),
            MeanTtfatMs = Mean(ttfat), MedianTtfatMs = Q(ttfat, 0.5), P99TtfatMs = Q(ttfat, 0.99),
            Preemptions = replicas.Sum(r => r.Preemptions),
            PeakKvCacheUsage = replicas.Max(r => (double)r.PeakBlocks / r.TotalBlocks),
            MeanKvCacheUsage = replicas.Average(r => r.KvBlockSeconds / (r.TotalBlocks * duration)),
            GpuBusyFraction = busy / (replicas.Count * duration),
            MeanBatchSize = iterations == 0 ? 0 : (double)replicas.Sum(r => r.BatchRequestsSum) / iterations,
            Iterations = iterations,
            EstBandwidthUtilization = replicas.Sum(r => r.Bytes) / (replicas.Sum(r => r.PeakBandwidth) * duration),
            EstComputeUtilization = replicas.Sum(r => r.Flops) / (replicas.Sum(r => r.PeakFlops) * duration),
            MeanThinkingTokens = done.Count == 0 ? 0 : done.Average(r => (double)r.ThinkingTokens),
            ThinkingTruncated = records.Count(r => r.ThinkingTruncated),
            Unstable = unstable,
            UnstableReason = reason,
        };
    }

    public static bool MeetsSlo(RequestRecord r, Scenarios.SloConfig slo) =>
        r.Status == RequestStatus.Completed
        && (slo.TtftMs is not { } t || r.TtftMs <= t)
        && (slo.TpotMs is not { } p || r.TpotMs is null || r.TpotMs <= p)
        && (slo.E2elMs is not { } e || r.E2elMs <= e);

    /// <summary>
    /// A run is flagged unstable when queueing keeps growing: the last tenth of arrivals waited (arrival to first
    /// schedule) over 10 s on average and over five times as long as the first tenth, or requests were still
    /// queued in numbers larger than the batch capacity when the last request arrived.
    /// </summary>
    public static (bool, string?) Stability(IReadOnlyList<RequestRecord> records, int batchCapacity)
    {
        var done = records.Where(r => r.FirstScheduledTimeS is not null).OrderBy(r => r.ArrivalTimeS).ToList();
        if (done.Count < 20) return (false, null);
        int tenth = Math.Max(1, done.Count / 10);
        double early = done.Take(tenth).Average(r => r.FirstScheduledTimeS!.Value - r.ArrivalTimeS);
        double late = done.Skip(done.Count - tenth).Average(r => r.FirstScheduledTimeS!.Value - r.ArrivalTimeS);
        if (late > 10 && late > 5 * early + 1)
            return (true, $"queueing delay grew from {early:F1} s (first 10% of arrivals) to {late:F1} s (last 10%): arrivals exceed capacity");
        double lastArrival = done[^1].ArrivalTimeS;
        int queued = done.Count(r => r.ArrivalTimeS <= lastArrival && r.FirstScheduledTimeS > lastArrival);
        if (queued > Math.Max(batchCapacity, done.Count / 10))
            return (true, $"{queued} requests were still queued when the last one arrived: arrivals exceed capacity");
        return (false, null);
    }

    private static double[] Sorted(IEnumerable<double> xs) => Percentiles.Sorted(xs);

    private static double Mean(double[] a) => a.Length == 0 ? 0 : a.Average();
    private static double Std(double[] a) => a.Length == 0 ? 0 : ArrayStatistics.PopulationStandardDeviation(a);

    private static double Q(double[] sorted, double q) => Percentiles.Of(sorted, q);

    private static double Z(double x) => double.IsNaN(x) ? 0 : x;
}
