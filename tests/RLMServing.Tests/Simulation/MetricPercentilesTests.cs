using RLMServing.Metrics;
using Xunit;

namespace RLMServing.Tests.Simulation;

public class MetricPercentilesTests
{
    [Fact]
    public void KeysAreWrittenAsVllmWritesThem()
    {
        Assert.Equal("p95_ttft_ms", MetricPercentiles.Key(95, "ttft"));
        Assert.Equal("p99.9_e2el_ms", MetricPercentiles.Key(99.9, "e2el"));
        Assert.Equal("p50_itl_ms", MetricPercentiles.Key(50.0, "itl"));
    }

    [Theory]
    [InlineData("p95_ttft_ms", 95, "ttft")]
    [InlineData("p99.9_tpot_ms", 99.9, "tpot")]
    [InlineData("p50_ttfat_ms", 50, "ttfat")]
    [InlineData("p1_itl_ms", 1, "itl")]
    public void KeysReadBack(string key, double p, string metric)
    {
        Assert.True(MetricPercentiles.TryParseKey(key, out var q, out var m));
        Assert.Equal(p, q);
        Assert.Equal(metric, m);
        Assert.Equal(key, MetricPercentiles.Key(q, m));
    }

    [Theory]
    [InlineData("median_ttft_ms")]
    [InlineData("p100_ttft_ms")]
    [InlineData("p0_ttft_ms")]
    [InlineData("p95.0_ttft_ms")]
    [InlineData("p095_ttft_ms")]
    [InlineData("p95_ttft")]
    [InlineData("p95_latency_ms")]
    [InlineData("p-5_ttft_ms")]
    public void OtherNamesAreNotPercentileKeys(string key) => Assert.False(MetricPercentiles.TryParseKey(key, out _, out _));

    [Fact]
    public void ListsAreSortedWithoutRepeats()
    {
        Assert.Equal([50, 90, 95, 99, 99.9], MetricPercentiles.Parse("99, 50,90,95,99.9,99", "--metric-percentiles"));
    }

    [Theory]
    [InlineData("50,100", "between 0 and 100")]
    [InlineData("0", "between 0 and 100")]
    [InlineData("50,abc", "'abc' is not a number")]
    [InlineData("", "is not a number")]
    public void BadListsNameTheSource(string text, string expected)
    {
        var e = Assert.Throws<UserInputException>(() => MetricPercentiles.Parse(text, "--metric-percentiles " + text));
        Assert.StartsWith("--metric-percentiles " + text + ":", e.Message);
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void SloKeysAddTheirPercentiles()
    {
        Assert.Equal([90, 95, 99, 99.9], MetricPercentiles.WithKeys(MetricPercentiles.Default, ["p99.9_ttft_ms", "goodput_fraction", "mean_e2el_ms"]));
    }
}
