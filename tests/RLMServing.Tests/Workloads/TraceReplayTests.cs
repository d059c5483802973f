using FsCheck;
using FsCheck.Xunit;
using RLMServing.IO.Traces;
using RLMServing.Tests.Traces;
using RLMServing.Workloads;
using Xunit;

namespace RLMServing.Tests.Workloads;

/// <summary>Replaying traces as simulator requests: order, counts, time scale, rate override; exact quantiles.</summary>
public class TraceReplayTests
{
    private static List<RequestTraceRow> Rows(int[] gapsMs, int seed)
    {
        var random = new Random(seed);
        double t = 10;
        return gapsMs.Select(g => { t += Math.Abs(g % 5000) / 1000.0; return new RequestTraceRow(t, random.Next(1, 5000), random.Next(1, 2000), random.Next(0, 2) == 0 ? null : 0); }).ToList();
    }

    [Property(MaxTest = 200)]
    public bool ReplayKeepsArrivalOrderAndCount(int[] gapsMs, int seed)
    {
        var rows = Rows(gapsMs, seed);
        var requests = RequestTraceWorkload.ToRequests(rows);
        return requests.Count == rows.Count
            && requests.Select(r => r.Id).SequenceEqual(Enumerable.Range(0, rows.Count).Select(i => (long)i))
            && requests.Zip(requests.Skip(1)).All(p => p.First.ArrivalTimeS <= p.Second.ArrivalTimeS)
            && (requests.Count == 0 || requests[0].ArrivalTimeS == 0)
            && requests.Zip(rows).All(p => p.First.PromptTokens == p.Second.PromptTokens && p.First.OutputTokens == p.Second.OutputTokens);
    }

    [Property(MaxTest = 200)]
    public bool TimeScaleScalesArrivals(int[] gapsMs, PositiveInt scaleTenths)
    {
        var rows = Rows(gapsMs, 1);
        double scale = scaleTenths.Get / 10.0;
        var baseline = RequestTraceWorkload.ToRequests(rows);
        var scaled = RequestTraceWorkload.ToRequests(rows, scale);
        return baseline.Zip(scaled).All(p => Math.Abs(p.Second.ArrivalTimeS - p.First.ArrivalTimeS * scale) <= 1e-9 * Math.Max(1, p.First.ArrivalTimeS * scale));
    }

    [Fact]
    public void RateOverrideSetsTheMeanRate()
    {
        var requests = RequestTraceWorkload.Load(SharedData.Path_("azure-2023", "AzureLLMInferenceTrace_conv.csv"), "azure", rateOverride: 20);
        Assert.Equal(19366, requests.Count);
        Assert.Equal(20, requests.Count / requests[^1].ArrivalTimeS, 6);
    }

    [Fact]
    public void LoadAppliesLimitAndKeepsThinking()
    {
        var requests = RequestTraceWorkload.Load(SharedData.Path_("servegen-deepseek-r1"), "servegen", limit: 500, seed: 9,
            options: new SourceOptions(StartS: 40000, DurationS: 600));
        Assert.Equal(500, requests.Count);
        Assert.Contains(requests, r => r.ThinkingTokens > 0);
        Assert.All(requests, r => Assert.True(r.AnswerTokens >= 0));
        var again = RequestTraceWorkload.Load(SharedData.Path_("servegen-deepseek-r1"), "servegen", limit: 500, seed: 9,
            options: new SourceOptions(StartS: 40000, DurationS: 600));
        Assert.Equal(requests, again);
    }

    [Property(MaxTest = 300)]
    public bool HistogramQuantilesEqualSortedQuantiles(int[] values, NonNegativeInt qPermille)
    {
        if (values.Length == 0) return true;
        var histogram = new CountHistogram();
        foreach (var v in values) histogram.Add(Math.Abs((long)v));
        var sorted = values.Select(v => (double)Math.Abs((long)v)).Order().ToArray();
        double q = (qPermille.Get % 1001) / 1000.0;
        double h = (sorted.Length - 1) * q;
        int lo = (int)Math.Floor(h);
        double expected = lo + 1 < sorted.Length ? sorted[lo] + (h - lo) * (sorted[lo + 1] - sorted[lo]) : sorted[lo];
        return Math.Abs(histogram.Quantile(q) - expected) <= 1e-6 * Math.Max(1, expected);
    }
}
