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
        // One pass over the rows: they are objects scattered over the heap, so every pass costs about a cache miss
        // per row, and at 100k rows separate LINQ passes per metric were a large share of a simulated run.
        // Values are gathered in row order, so sums, sorts and means are exactly those of one pass per metric.
        int n = records.Count, completed = 0, good = 0, truncated = 0;
        double start = 0, end = 0, thinking = 0;
        long input = 0, output = 0;
        var ttftList = new List<double>(n);
        var tpotList = new List<double>(n);
        var e2elList = new List<double>(n);
        var ttfatList = new List<double>(n);
        for (int i = 0; i < n; i++)
        {
            var r = records[i];
            if (i == 0 || r.ArrivalTimeS < start) start = r.ArrivalTimeS;
            if (r.ThinkingTruncated) truncated++;
            if (r.Status != RequestStatus.Completed) continue;
            double completion = r.CompletionTimeS!.Value;
            if (completed == 0 || completion > end) end = completion;
            completed++;
            input += r.PromptTokens;
            output += r.OutputTokens;
            thinking += r.ThinkingTokens;
            ttftList.Add(r.TtftMs!.Value);
            if (r.TpotMs is { } tpotMs) tpotList.Add(tpotMs);
            e2elList.Add(r.E2elMs!.Value);
            if (r.TtfatMs is { } ttfatMs) ttfatList.Add(ttfatMs);
            if (MeetsSlo(r, slo)) good++;
        }
        if (completed == 0) end = start;
        double duration = Math.Max(end - start, 1e-12);
        var ttft = Percentiles.Sorted(ttftList);
        var tpot = Percentiles.Sorted(tpotList);
        var e2el = Percentiles.Sorted(e2elList);
        var ttfat = Percentiles.Sorted(ttfatList);
        double busy = replicas.Sum(r => r.BusyS);
        long iterations = replicas.Sum(r => r.Iterations);
        var (unstable, reason) = Stability(records, maxNumSeqs * replicas.Count);
        return identity with
        {
            Completed = completed,
            Failed = n - completed,
            Rejected = n - completed,
            Duration = duration,
            TotalInputTokens = input,
            TotalOutputTokens = output,
            RequestThroughput = completed / duration,
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
            MeanThinkingTokens = completed == 0 ? 0 : thinking / completed,
            ThinkingTruncated = truncated,
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
        // Read the rows once; scheduled rows in arrival order, ties in row order (what a stable sort gives).
        var arrivalS = new List<double>(records.Count);
        var waitS = new List<double>(records.Count);
        var scheduledS = new List<double>(records.Count);
        foreach (var r in records)
        {
            if (r.FirstScheduledTimeS is not { } first) continue;
            arrivalS.Add(r.ArrivalTimeS);
            scheduledS.Add(first);
            waitS.Add(first - r.ArrivalTimeS);
        }
        int count = arrivalS.Count;
        if (count < 20) return (false, null);
        var order = new (double ArrivalS, int Row)[count];
        for (int i = 0; i < count; i++) order[i] = (arrivalS[i], i);
        Array.Sort(order);
        int tenth = Math.Max(1, count / 10);
        double early = 0, late = 0;
        for (int i = 0; i < tenth; i++) early += waitS[order[i].Row];
        for (int i = count - tenth; i < count; i++) late += waitS[order[i].Row];
        early /= tenth;
        late /= tenth;
        if (late > 10 && late > 5 * early + 1)
            return (true, $"queueing delay grew from {early:F1} s (first 10% of arrivals) to {late:F1} s (last 10%): arrivals exceed capacity");
        double lastArrival = order[^1].ArrivalS;
        int queued = 0;
        for (int i = 0; i < count; i++)
            if (arrivalS[i] <= lastArrival && scheduledS[i] > lastArrival) queued++;
        if (queued > Math.Max(batchCapacity, count / 10))
            return (true, $"{queued} requests were still queued when the last one arrived: arrivals exceed capacity");
        return (false, null);
    }

    private static double Mean(double[] a) => a.Length == 0 ? 0 : a.Average();
    private static double Std(double[] a) => a.Length == 0 ? 0 : ArrayStatistics.PopulationStandardDeviation(a);

    private static double Q(double[] sorted, double q) => Percentiles.Of(sorted, q);

    private static double Z(double x) => double.IsNaN(x) ? 0 : x;
}
