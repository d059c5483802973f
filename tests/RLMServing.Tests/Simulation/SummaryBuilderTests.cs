using FsCheck.Xunit;
using MathNet.Numerics.Statistics;
using RLMServing.Metrics;
using RLMServing.Scenarios;
using RLMServing.Simulation;
using Xunit;

namespace RLMServing.Tests.Simulation;

/// <summary>
/// The summary is built in one pass over the rows (for speed); it must equal, bit for bit, the summary computed
/// metric by metric with one LINQ pass each (the reference below is that code), whatever the rows: rejected rows,
/// one-token outputs (no TPOT), rows without a first answer token, ties in arrival time.
/// </summary>
public class SummaryBuilderTests
{
    [Property(MaxTest = 300)]
    public void OnePassSummaryEqualsMetricByMetric(int seed)
    {
        var rng = new Random(seed);
        var records = RandomRecords(rng);
        var slo = rng.Next(3) switch
        {
            0 => new SloConfig(null, null, null),
            1 => new SloConfig(rng.NextDouble() * 3000, rng.NextDouble() * 60, null),
            _ => new SloConfig(null, 40, rng.NextDouble() * 200_000),
        };
        var itl = new QuantileSketch(0.005);
        for (int i = 0; i < 50; i++) itl.Add(rng.NextDouble() * 50);
        var replicas = Enumerable.Range(0, 1 + rng.Next(3))
            .Select(_ => new ReplicaTotals(rng.NextDouble() * 100, 1e15, 1e13, 1000, 50_000, 1e6, 900, 1000, 3, 1e15, 3e12)).ToList();
        var identity = new RunSummary { Scenario = "s", Model = "m", Gpu = "g" };
        int maxNumSeqs = 1 + rng.Next(64);

        var expected = ReferenceBuild(identity, records, itl, replicas, slo, maxNumSeqs);
        var actual = SummaryBuilder.Build(identity, records, itl, replicas, slo, maxNumSeqs);

        Assert.Equal(expected, actual);
    }

    [Fact]
    public void RowsAreSortedByIdAndDuplicateIdsKeepTheComparisonSortsOrder()
    {
        var rng = new Random(3);
        var unique = Enumerable.Range(0, 5000).OrderBy(_ => rng.Next()).Select(i => Row(i, rng.NextDouble(), 1, rng)).ToList();
        Simulator.SortById(unique);
        Assert.Equal(Enumerable.Range(0, 5000).Select(i => (long)i), unique.Select(r => r.RequestId));

        // Duplicate ids (never produced by the simulator): the order is exactly what the comparison sort gives.
        var duplicated = Enumerable.Range(0, 5000).Select(i => Row(rng.Next(100), i, 1, rng)).ToList();
        var expected = duplicated.ToList();
        expected.Sort((a, b) => a.RequestId.CompareTo(b.RequestId));
        Simulator.SortById(duplicated);
        Assert.Equal(expected, duplicated, ReferenceEqualityComparer.Instance);
    }

    [Fact]
    public void IdsThatAreNotConsecutiveAreSortedLikeTheComparisonSort()
    {
        var rng = new Random(5);
        foreach (var ids in new[]
        {
            Enumerable.Range(1000, 3000).Select(i => (long)i).ToArray(),                           // consecutive, not from 0
            Enumerable.Range(0, 3000).Select(i => (long)(i < 1500 ? i : i + 1)).ToArray(),         // one gap
            Enumerable.Range(0, 3000).Select(i => (long)(i == 7 ? 8 : i)).ToArray(),               // a duplicate and a gap, n consecutive wide
            Enumerable.Range(0, 3000).Select(_ => (long)rng.Next(-50, 50)).ToArray(),              // negative, many duplicates
        })
        {
            var rows = ids.OrderBy(_ => rng.Next()).Select(id => Row(id, rng.NextDouble(), 1, rng)).ToList();
            var expected = rows.ToList();
            expected.Sort((a, b) => a.RequestId.CompareTo(b.RequestId));
            Simulator.SortById(rows);
            Assert.Equal(expected.Select(r => r.RequestId), rows.Select(r => r.RequestId));
            if (ids.Distinct().Count() == ids.Length) Assert.Equal(expected, rows, ReferenceEqualityComparer.Instance);
        }
    }

    /// <summary>The radix sort of large latency arrays gives the comparison sort's array, bit for bit.</summary>
    [Property(MaxTest = 60)]
    public void RadixSortEqualsArraySort(int seed)
    {
        var rng = new Random(seed);
        int n = rng.Next(4) == 0 ? rng.Next(Percentiles.RadixMinimum) : Percentiles.RadixMinimum + rng.Next(40_000);
        int kind = rng.Next(6);
        var a = new double[n];
        for (int i = 0; i < n; i++)
            a[i] = kind switch
            {
                0 => rng.NextDouble() * 1000,                                   // latencies in ms
                1 => Math.Round(rng.NextDouble() * 20, 1),                      // many ties
                2 => (rng.NextDouble() - 0.5) * Math.Pow(10, rng.Next(-300, 300)),   // both signs, every magnitude
                3 => rng.Next(8) switch { 0 => double.PositiveInfinity, 1 => double.NegativeInfinity, 2 => 0.0, 3 => double.Epsilon, 4 => -double.Epsilon, 5 => double.MaxValue, _ => rng.NextDouble() },
                4 => rng.Next(50) == 0 ? -0.0 : rng.NextDouble() - 0.5,         // -0.0 beside 0.0: the comparison sort's own order
                _ => rng.Next(50) == 0 ? double.NaN : rng.NextDouble(),         // NaN: likewise
            };
        if (kind == 4 && n > 0) a[rng.Next(n)] = 0.0;
        var expected = (double[])a.Clone();
        Array.Sort(expected);
        Percentiles.Sort(a);
        Assert.Equal(expected.Select(BitConverter.DoubleToInt64Bits), a.Select(BitConverter.DoubleToInt64Bits));
    }

    private static RequestRecord Row(long id, double arrivalS, double scheduledS, Random rng) =>
        new(id, arrivalS, 100, 50, 20, RequestStatus.Completed, scheduledS, scheduledS + 0.1, scheduledS + 0.5,
            scheduledS + 1 + rng.NextDouble(), 0, 0, null, false);

    private static List<RequestRecord> RandomRecords(Random rng)
    {
        int n = rng.Next(4) == 0 ? rng.Next(25) : rng.Next(25, 600);
        double growth = rng.Next(3) == 0 ? rng.NextDouble() * 0.5 : 0;
        var rows = new List<RequestRecord>(n);
        for (int i = 0; i < n; i++)
        {
            // Arrivals on a coarse grid, so ties are common; rows in a shuffled (completion-like) order.
            double arrival = Math.Round(rng.NextDouble() * n * 0.05, 1);
            if (rng.Next(10) == 0)
            {
                rows.Add(new RequestRecord(i, arrival, 1 + rng.Next(5000), 0, 0, RequestStatus.Rejected,
                    null, null, null, null, 0, rng.Next(4), "exceeds_kv_cache", rng.Next(2) == 0));
                continue;
            }
            double scheduled = arrival + rng.NextDouble() * 2 + growth * arrival * rng.NextDouble() * 10;
            double first = scheduled + rng.NextDouble() * 0.5;
            int output = rng.Next(6) == 0 ? 1 : 1 + rng.Next(20_000);
            int thinking = rng.Next(output + 1);
            double? answer = rng.Next(5) == 0 ? null : first + rng.NextDouble() * 20;
            double completion = (answer ?? first) + rng.NextDouble() * 60;
            rows.Add(new RequestRecord(i, arrival, 1 + rng.Next(5000), output, thinking, RequestStatus.Completed,
                scheduled, first, answer, completion, rng.Next(3), rng.Next(4), null, rng.Next(4) == 0));
        }
        return rows.OrderBy(_ => rng.Next()).ToList();
    }

    // ---- the summary as it was computed before, one LINQ pass per metric ----------------------------------------

    private static RunSummary ReferenceBuild(RunSummary identity, IReadOnlyList<RequestRecord> records, QuantileSketch itl,
        IReadOnlyList<ReplicaTotals> replicas, SloConfig slo, int maxNumSeqs)
    {
        var done = records.Where(r => r.Status == RequestStatus.Completed).ToList();
        double start = records.Count == 0 ? 0 : records.Min(r => r.ArrivalTimeS);
        double end = done.Count == 0 ? start : done.Max(r => r.CompletionTimeS!.Value);
        double duration = Math.Max(end - start, 1e-12);
        long input = done.Sum(r => (long)r.PromptTokens), output = done.Sum(r => (long)r.OutputTokens);
        var ttft = Percentiles.Sorted(done.Select(r => r.TtftMs!.Value));
        var tpot = Percentiles.Sorted(done.Where(r => r.TpotMs is not null).Select(r => r.TpotMs!.Value));
        var e2el = Percentiles.Sorted(done.Select(r => r.E2elMs!.Value));
        var ttfat = Percentiles.Sorted(done.Where(r => r.TtfatMs is not null).Select(r => r.TtfatMs!.Value));
        int good = done.Count(r => SummaryBuilder.MeetsSlo(r, slo));
        double busy = replicas.Sum(r => r.BusyS);
        long iterations = replicas.Sum(r => r.Iterations);
        // Stability is the steady-state trend test (SteadyStateTests), not a per-metric pass.
        var (unstable, reason) = SummaryBuilder.Stability(records);
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
            ItlSketch = itl,
            SteadyWindow = SteadyState.Analyze(records),
            Latencies = LatencySamples.All(records),
        };
    }

    private static double Mean(double[] a) => a.Length == 0 ? 0 : a.Average();
    private static double Std(double[] a) => a.Length == 0 ? 0 : ArrayStatistics.PopulationStandardDeviation(a);
    private static double Q(double[] sorted, double q) => Percentiles.Of(sorted, q);
    private static double Z(double x) => double.IsNaN(x) ? 0 : x;
}
