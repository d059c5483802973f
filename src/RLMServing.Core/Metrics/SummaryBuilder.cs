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
        var serviceList = new List<double>(n);
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
            if (r.FirstScheduledTimeS is { } firstScheduled) serviceList.Add(completion - firstScheduled);
            if (MeetsSlo(r, slo)) good++;
        }
        if (completed == 0) end = start;
        double duration = Math.Max(end - start, 1e-12);
        var latencies = new LatencySamples(n, completed, ttftList, tpotList, e2elList, ttfatList, serviceList);
        var (ttft, tpot, e2el, ttfat) = (latencies.Ttft, latencies.Tpot, latencies.E2el, latencies.Ttfat);
        double busy = replicas.Sum(r => r.BusyS);
        long iterations = replicas.Sum(r => r.Iterations);
        var steadyWindow = SteadyState.Analyze(records);
        return identity with
        {
            SteadyWindow = steadyWindow,
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
            Unstable = steadyWindow.Unstable,
            UnstableReason = steadyWindow.Reason,
            ItlSketch = itl,
            Latencies = latencies,
        };
    }

    public static bool MeetsSlo(RequestRecord r, Scenarios.SloConfig slo) =>
        r.Status == RequestStatus.Completed
        && (slo.TtftMs is not { } t || r.TtftMs <= t)
        && (slo.TpotMs is not { } p || r.TpotMs is null || r.TpotMs <= p)
        && (slo.E2elMs is not { } e || r.E2elMs <= e);

    /// <summary>
    /// A run is flagged unstable when its queue keeps growing through the steady window: a Mann-Kendall trend test
    /// over time windows of queueing delay and queue length (<see cref="SteadyState"/>).
    /// </summary>
    public static (bool, string?) Stability(IReadOnlyList<RequestRecord> records)
    {
        var w = SteadyState.Analyze(records);
        return (w.Unstable, w.Reason);
    }

    /// <summary>
    /// Adds what depends on the run's reporting settings rather than on the engine: the percentile keys of
    /// <paramref name="percentiles"/> beyond the fixed p90/p99 ones, the steady window with the SLO metrics over it,
    /// and whether the slo's percentile limits hold there.
    /// </summary>
    public static RunSummary Complete(RunSummary summary, IReadOnlyList<RequestRecord> records, IReadOnlyList<double> percentiles, Scenarios.SloConfig slo)
    {
        var wanted = MetricPercentiles.WithKeys(percentiles, slo.Limits.Select(l => l.Key));
        // Build analysed these very rows for its stability verdict; a summary read back from a file has no window.
        var window = summary.SteadyWindow ?? SteadyState.Analyze(records);
        // Build sorted these very rows' latencies; sorting is most of this method's work at 100k rows.
        var all = summary.Latencies ?? LatencySamples.All(records);
        var steady = LatencySamples.Arriving(records, window.StartS, window.EndS);

        var extra = new Dictionary<string, object>();
        foreach (var p in wanted)
            foreach (var metric in MetricPercentiles.Metrics)
            {
                var key = MetricPercentiles.Key(p, metric);
                if (MetricPercentiles.FixedKeys.Contains(key)) continue;
                double value = metric == "itl"
                    ? Z(summary.ItlSketch?.Quantile(p / 100) ?? double.NaN)
                    : Q(all.Of(metric), p / 100);
                extra[key] = value;
            }

        double length = window.EndS - window.StartS;
        int completedInWindow = 0, goodInWindow = 0;
        long outputInWindow = 0;
        foreach (var r in records)
            if (r.CompletionTimeS is { } c && c >= window.StartS && c <= window.EndS)
            {
                completedInWindow++;
                outputInWindow += r.OutputTokens;
                if (MeetsSlo(r, slo)) goodInWindow++;
            }
        var steadyPercentiles = new Dictionary<string, object>();
        // ITL is per token, not per request: the simulator keeps its gaps by time, read here over the window. A summary
        // without them (a benchmark's, one read back from a file) has no steady ITL, and a limit on it is judged over
        // the whole run.
        var steadyItl = summary.ItlByTime?.Between(window.StartS, window.EndS);
        foreach (var p in MetricPercentiles.WithFixed(wanted))
            foreach (var metric in MetricPercentiles.Metrics)
            {
                if (metric == "itl")
                {
                    if (steadyItl is not null) steadyPercentiles[MetricPercentiles.Key(p, metric)] = Z(steadyItl.Quantile(p / 100));
                    continue;
                }
                steadyPercentiles[MetricPercentiles.Key(p, metric)] = Q(steady.Of(metric), p / 100);
            }
        var state = new SteadyStateSummary
        {
            StartS = window.StartS,
            EndS = window.EndS,
            WarmupS = window.WarmupS,
            DrainS = window.DrainS,
            Requests = steady.Count,
            Completed = steady.Completed,
            RequestThroughput = length > 0 ? completedInWindow / length : summary.RequestThroughput,
            OutputThroughput = length > 0 ? outputInWindow / length : summary.OutputThroughput,
            RequestGoodput = !slo.IsSet ? null : length > 0 ? goodInWindow / length : summary.RequestGoodput,
            GoodputFraction = !slo.IsSet ? null : steady.Count == 0 ? 0 : (double)Good(records, window, slo) / steady.Count,
            MeanTtftMs = Mean(steady.Of("ttft")),
            MeanTpotMs = Mean(steady.Of("tpot")),
            MeanE2elMs = Mean(steady.Of("e2el")),
            MeanTtfatMs = Mean(steady.Of("ttfat")),
            P99ServiceS = Q(steady.ServiceS, 0.99),
            QueueingDelayTrendP = window.DelayTrend?.PIncreasing,
            QueueLengthTrendP = window.QueueTrend?.PIncreasing,
            Percentiles = steadyPercentiles,
        };
        bool? sloMet = null;
        if (slo.Limits.Count > 0)
            sloMet = !summary.Unstable && slo.Limits.All(l => steadyPercentiles.TryGetValue(l.Key, out var v) ? (double)v <= l.LimitMs
                : extra.TryGetValue(l.Key, out var w) ? (double)w <= l.LimitMs
                : SummaryValue(summary, l.Key) is { } x && x <= l.LimitMs);
        return summary with { Percentiles = extra.Count == 0 ? null : extra, SteadyState = state, SloMet = sloMet };
    }

    /// <summary>A fixed percentile key of the summary (p90_/p99_ of the five metrics) by name; null for others.</summary>
    private static double? SummaryValue(RunSummary s, string key) => key switch
    {
        "p90_ttft_ms" => s.P90TtftMs, "p99_ttft_ms" => s.P99TtftMs,
        "p90_tpot_ms" => s.P90TpotMs, "p99_tpot_ms" => s.P99TpotMs,
        "p90_itl_ms" => s.P90ItlMs, "p99_itl_ms" => s.P99ItlMs,
        "p90_e2el_ms" => s.P90E2elMs, "p99_e2el_ms" => s.P99E2elMs,
        "p99_ttfat_ms" => s.P99TtfatMs,
        _ => null,
    };

    /// <summary>Rows arriving inside the steady window that met the slo.</summary>
    private static int Good(IReadOnlyList<RequestRecord> records, SteadyWindow window, Scenarios.SloConfig slo)
    {
        int good = 0;
        foreach (var r in records)
            if (r.ArrivalTimeS >= window.StartS && r.ArrivalTimeS <= window.EndS && MeetsSlo(r, slo)) good++;
        return good;
    }

    private static double Mean(double[] a) => a.Length == 0 ? 0 : a.Average();
    private static double Std(double[] a) => a.Length == 0 ? 0 : ArrayStatistics.PopulationStandardDeviation(a);

    private static double Q(double[] sorted, double q) => Percentiles.Of(sorted, q);

    private static double Z(double x) => double.IsNaN(x) ? 0 : x;
}
