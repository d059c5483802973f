using FsCheck;
using FsCheck.Xunit;
using RLMServing.Sweeps;
using Xunit;

namespace RLMServing.Tests.Sweeps;

public class CapacitySearchTests
{
    private static readonly CapacitySearchOptions Options = new(StartRate: 1, MinRate: 0.01, MaxRate: 10_000, Tolerance: 0.01, MaxProbes: 60);

    [Theory]
    [InlineData(7.3, 1.0)]
    [InlineData(7.3, 100.0)]
    [InlineData(0.37, 1.0)]
    [InlineData(1234.5, 3.0)]
    public void BisectionFindsTheThresholdOfAMonotoneFunction(double threshold, double start)
    {
        var r = CapacitySearch.Find(rate => rate <= threshold, Options with { StartRate = start });
        Assert.InRange(r.MaxRate, threshold / (1 + Options.Tolerance), threshold);
        Assert.All(r.Probes, p => Assert.Equal(p.Rate <= threshold, p.Meets));
        Assert.True(r.Probes.Count < 30, $"{r.Probes.Count} probes");
    }

    [Property(MaxTest = 200)]
    public bool ThresholdFoundWithinToleranceForAnyThreshold(PositiveInt a, PositiveInt b)
    {
        double threshold = 0.02 + a.Get % 100_000 / 10.0, start = 0.05 + b.Get % 1000 / 7.0;
        var r = CapacitySearch.Find(rate => rate <= threshold, Options with { StartRate = start });
        return r.MaxRate <= threshold && r.MaxRate >= threshold / (1 + Options.Tolerance);
    }

    [Fact]
    public void NoRateMeetingTheObjectiveGivesZero()
    {
        var r = CapacitySearch.Find(_ => false, Options);
        Assert.Equal(0, r.MaxRate);
        Assert.Equal(Options.MinRate, r.Probes[^1].Rate);
    }

    [Fact]
    public void EveryRateMeetingTheObjectiveStopsAtTheMaximum()
    {
        var r = CapacitySearch.Find(_ => true, Options);
        Assert.Equal(Options.MaxRate, r.MaxRate);
        Assert.True(r.Saturated(Options));
    }

    [Fact]
    public void GpusForTargetScaleReplicasUp()
    {
        // 2 replicas sustain 3 req/s, so 1.5 req/s each; 10 req/s needs 7 replicas of 4 GPUs.
        Assert.Equal(28, CapacityPlanning.GpusForTarget(3, 2, 4, 10));
        Assert.Equal(4, CapacityPlanning.GpusForTarget(3, 2, 4, 1.5));
        Assert.Null(CapacityPlanning.GpusForTarget(0, 1, 1, 10));
    }

    [Fact]
    public void CostPerMillionTokensIsHourlyPriceOverHourlyTokens()
    {
        // 8 GPUs at $2/h = $16/h; 1000 tok/s = 3.6 M tok/h -> $4.444 per million.
        Assert.Equal(16.0 / 3.6, CapacityPlanning.UsdPerMillionTokens(8, 2.0, 1000)!.Value, 9);
        Assert.Null(CapacityPlanning.UsdPerMillionTokens(8, 2.0, 0));
    }

    [Fact]
    public void ParetoFrontierKeepsOnlyUndominatedPoints()
    {
        var pts = new (double?, double?)[] { (1, 10), (2, 5), (3, 5), (2, 7), (4, 1), (1, 10), (null, 0), (5, 1) };
        Assert.Equal([true, true, false, false, true, true, false, false], Pareto.Frontier(pts));
    }

    [Property(MaxTest = 100)]
    public bool ParetoFrontierMatchesTheDefinition(int[] costs, int[] latencies)
    {
        int n = Math.Min(costs.Length, latencies.Length);
        var pts = Enumerable.Range(0, n).Select(i => ((double?)(costs[i] % 5), (double?)(latencies[i] % 5))).ToList();
        var on = Pareto.Frontier(pts);
        for (int i = 0; i < n; i++)
        {
            bool dominated = pts.Any(q => q.Item1 <= pts[i].Item1 && q.Item2 <= pts[i].Item2 && (q.Item1 < pts[i].Item1 || q.Item2 < pts[i].Item2));
            if (on[i] == dominated) return false;
        }
        return true;
    }
}
