using RLMServing.Metrics;
using RLMServing.Scenarios;
using Xunit;

namespace RLMServing.Tests.Simulation;

/// <summary>
/// ITL by time: the steady window's inter-token latencies are read from gaps kept by the time they were emitted, in a
/// bounded number of time buckets.
/// </summary>
public class TimedQuantileSketchTests
{
    [Fact]
    public void AWindowReadsOnlyTheGapsOfItsTime()
    {
        var s = new TimedQuantileSketch();
        for (int i = 0; i < 1000; i++) s.Add(i * 0.01, 100);        // 0..10 s: 100 ms gaps (warm-up)
        for (int i = 0; i < 1000; i++) s.Add(10 + i * 0.01, 5);     // 10..20 s: 5 ms gaps
        var late = s.Between(10, 20)!;
        Assert.Equal(1000, late.Count);
        Assert.Equal(5, late.Quantile(0.99), 5 * 0.005);
        Assert.Equal(100, s.Between(0, 20)!.Quantile(0.99), 100 * 0.005);
        Assert.Null(s.Between(30, 40));
    }

    [Fact]
    public void ARunThatStartsLateStillHasItsWindow()
    {
        // Arrivals from 100,000 s to 100,100 s: the buckets from 0 are 2,048 s wide, and the window lies inside one.
        var s = new TimedQuantileSketch();
        for (int i = 0; i < 1000; i++) s.Add(100_000 + i * 0.1, 7);
        Assert.Equal(2048, s.WidthS);
        var window = s.Between(100_010, 100_090)!;
        Assert.Equal(1000, window.Count);
        Assert.Equal(7, window.Quantile(0.5), 7 * 0.005);
    }

    [Fact]
    public void MemoryIsBoundedWhateverTheTimesAndNoSampleIsLost()
    {
        var s = new TimedQuantileSketch();
        s.Add(0, 10);
        s.Add(1e9, 20);
        s.Add(3.5, 30, weight: 4);
        Assert.True(s.WidthS * TimedQuantileSketch.MaxBuckets > 1e9);
        Assert.True(s.WidthS < 2 * 1e9 / TimedQuantileSketch.MaxBuckets, $"width {s.WidthS} coarser than it needs");
        Assert.Equal(6, s.Count);
        Assert.Equal(6, s.Between(0, 2e9)!.Count);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void ReplicasMergeAsOneSketchOfAllTheirGaps(int seed)
    {
        // Two replicas whose runs end at different times (so at different bucket widths) merge into what one sketch
        // of all the gaps holds, window by window.
        var rng = new Random(seed);
        var (a, b, all) = (new TimedQuantileSketch(), new TimedQuantileSketch(), new TimedQuantileSketch());
        foreach (var (sketch, end) in new[] { (a, 30.0), (b, 700.0) })
            for (int i = 0; i < 2000; i++)
            {
                double t = rng.NextDouble() * end, gap = 1 + rng.NextDouble() * 50;
                sketch.Add(t, gap);
                all.Add(t, gap);
            }
        a.Merge(b);
        Assert.Equal(all.WidthS, a.WidthS);
        for (double from = 0; from < 700; from += 100)
        {
            var (m, o) = (a.Between(from, from + 100), all.Between(from, from + 100));
            Assert.Equal(o?.Count, m?.Count);
            foreach (var q in new[] { 0.5, 0.9, 0.99 }) Assert.Equal(o?.Quantile(q), m?.Quantile(q));
        }
    }

    [Fact]
    public void TheSteadyWindowCarriesItlPercentilesAndTheSloJudgesThem()
    {
        var random = TestScenarios.Random(7);
        var s = random with { Workload = (RLMServing.Workloads.SyntheticWorkload)random.Workload! with { Requests = 200 } };
        var result = TestScenarios.Run(s, TestScenarios.GpuFor(7));
        var done = SummaryBuilder.Complete(result.Summary, result.Requests, [50, 99], new SloConfig(null, null, null));
        var state = done.SteadyState!;
        var expected = result.Summary.ItlByTime!.Between(state.StartS, state.EndS)!;
        Assert.Equal(expected.Quantile(0.99), (double)state.Percentiles!["p99_itl_ms"]);
        Assert.Equal(expected.Quantile(0.5), (double)state.Percentiles["p50_itl_ms"]);
        // Every gap the run recorded is in the buckets; a window over the whole run is the whole-run sketch.
        Assert.Equal(result.Summary.ItlSketch!.Count, result.Summary.ItlByTime.Count, 6);
        Assert.Equal(result.Summary.ItlSketch.Quantile(0.9), result.Summary.ItlByTime.Between(0, double.MaxValue)!.Quantile(0.9));

        double p99 = (double)state.Percentiles["p99_itl_ms"];
        var met = SummaryBuilder.Complete(result.Summary, result.Requests, [50, 99], SloWithP99Itl(p99 * 1.01)).SloMet;
        var missed = SummaryBuilder.Complete(result.Summary, result.Requests, [50, 99], SloWithP99Itl(p99 * 0.99)).SloMet;
        if (!result.Summary.Unstable) Assert.True(met);
        Assert.False(missed);
    }

    private static SloConfig SloWithP99Itl(double limitMs) =>
        new SloConfig(null, null, null) { Limits = [("p99_itl_ms", limitMs)] };
}
