using RLMServing.Sweeps;
using Xunit;

namespace RLMServing.Tests.Sweeps;

public class SweepDesignTests
{
    private static ListAxis List(string key, params string[] values) =>
        new(key, values.Select(v => new AxisValue(v, double.TryParse(v, System.Globalization.CultureInfo.InvariantCulture, out var d) ? d : null)).ToList());

    [Fact]
    public void GridIsTheCartesianProductWithTheLastAxisFastest()
    {
        var axes = new Axis[] { List("scheduler.batching", "static", "continuous", "chunked_prefill"), List("scheduler.max_num_seqs", "32", "64", "128") };
        var points = DesignSampler.Expand(axes, Sampling.Grid);
        Assert.Equal(9, points.Count);
        Assert.Equal(["static", "32"], points[0].Select(v => v.Text));
        Assert.Equal(["static", "64"], points[1].Select(v => v.Text));
        Assert.Equal(["continuous", "32"], points[3].Select(v => v.Text));
        Assert.Equal(["chunked_prefill", "128"], points[8].Select(v => v.Text));
        Assert.Equal(9, points.Select(p => string.Join("|", p.Select(v => v.Text))).Distinct().Count());
    }

    [Fact]
    public void NoAxesIsOnePoint() => Assert.Single(DesignSampler.Expand([], Sampling.Grid));

    [Fact]
    public void RangesExpandExactly()
    {
        Assert.Equal(["32", "64", "96", "128"], new RangeAxis("k", 32, 128, 32, null, false, true).GridValues().Select(v => v.Text));
        Assert.Equal([0.5, 0.75, 1.0], new RangeAxis("k", 0.5, 1.0, null, 3, false, false).GridValues().Select(v => v.Number!.Value));
        var log = new RangeAxis("k", 1, 16, null, 5, true, false).GridValues().Select(v => v.Number!.Value).ToArray();
        Assert.Equal([1, 2, 4, 8, 16], log.Select(x => Math.Round(x, 9)));
        // Integer log ranges round and drop duplicates: 1, 1.41, 2, 2.83, 4 -> 1, 1, 2, 3, 4.
        Assert.Equal(["1", "2", "3", "4"], new RangeAxis("k", 1, 4, null, 5, true, true).GridValues().Select(v => v.Text));
        Assert.Equal(["0.1", "0.30000000000000004"], new RangeAxis("k", 0.1, 0.35, 0.2, null, false, false).GridValues().Select(v => v.Text));
    }

    [Fact]
    public void RandomSamplingIsSeededAndStaysInRange()
    {
        var axes = new Axis[] { new RangeAxis("workload.arrival.rate", 0.5, 16, null, null, true, false), List("scheduler.batching", "static", "continuous"), new RangeAxis("scheduler.max_num_seqs", 8, 512, null, null, false, true) };
        var s = new Sampling(SamplingMethod.Random, 200, 7);
        var a = DesignSampler.Expand(axes, s);
        var b = DesignSampler.Expand(axes, s);
        var c = DesignSampler.Expand(axes, s with { Seed = 8 });
        Assert.Equal(200, a.Count);
        Assert.Equal(Texts(a), Texts(b));
        Assert.NotEqual(Texts(a), Texts(c));
        Assert.All(a, p => Assert.InRange(p[0].Number!.Value, 0.5, 16));
        Assert.All(a, p => Assert.Contains(p[1].Text, new[] { "static", "continuous" }));
        Assert.All(a, p => Assert.True(p[2].Number is >= 8 and <= 512 && p[2].Number == Math.Floor(p[2].Number!.Value)));
        // Log-uniform: about half the draws fall below the geometric midpoint sqrt(0.5 * 16) = 2.83.
        Assert.InRange(a.Count(p => p[0].Number < Math.Sqrt(8)), 70, 130);
    }

    [Fact]
    public void LatinHypercubeUsesEveryStratumOfEveryAxisOnce()
    {
        const int n = 50;
        var axes = new Axis[] { new RangeAxis("a", 0, 1, null, null, false, false), new RangeAxis("b", 10, 20, null, null, false, false), new RangeAxis("c", 1, 100, null, null, true, false) };
        var points = DesignSampler.Expand(axes, new Sampling(SamplingMethod.LatinHypercube, n, 3));
        Assert.Equal(n, points.Count);
        int Stratum(double u) => Math.Min(n - 1, (int)Math.Floor(u * n));
        Assert.Equal(Enumerable.Range(0, n), points.Select(p => Stratum(p[0].Number!.Value)).Order());
        Assert.Equal(Enumerable.Range(0, n), points.Select(p => Stratum((p[1].Number!.Value - 10) / 10)).Order());
        Assert.Equal(Enumerable.Range(0, n), points.Select(p => Stratum(Math.Log(p[2].Number!.Value) / Math.Log(100))).Order());
        Assert.Equal(Texts(points), Texts(DesignSampler.Expand(axes, new Sampling(SamplingMethod.LatinHypercube, n, 3))));
    }

    [Fact]
    public void LatinHypercubeOverAListSpreadsItsValuesEvenly()
    {
        var points = DesignSampler.Expand([List("k", "a", "b", "c", "d")], new Sampling(SamplingMethod.LatinHypercube, 20, 1));
        Assert.All(points.GroupBy(p => p[0].Text), g => Assert.Equal(5, g.Count()));
    }

    private static List<string> Texts(IReadOnlyList<AxisValue[]> points) => points.Select(p => string.Join("|", p.Select(v => v.Text))).ToList();
}

public class ShippedSweepTests
{
    [Theory]
    [InlineData("capacity-planning.yaml", 12)]
    [InlineData("bench-sweep-1000.yaml", 1000)]
    public void ShippedSweepValidates(string file, int configurations)
    {
        var sweep = RLMServing.IO.Sweeps.SweepLoader.Load(Path.Combine(RLMServing.Tests.Cli.RlmsProcess.RepoRoot(), "scenarios", file));
        var runner = new RLMServing.IO.Sweeps.SweepRunner(sweep, RLMServing.IO.Catalog.CatalogLoader.LoadDefault());
        Assert.Equal(configurations, runner.Configurations.Count);
        runner.Validate();
    }
}
