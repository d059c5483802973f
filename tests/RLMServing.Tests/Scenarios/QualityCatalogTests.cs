using RLMServing.IO.Catalog;
using RLMServing.Tests.Cli;
using Xunit;

namespace RLMServing.Tests.Scenarios;

/// <summary>The cited quality files: every shipped number names its source and place, derived numbers check out, bad files are refused.</summary>
public class QualityCatalogTests
{
    private static readonly QualityCatalog Shipped = QualityCatalog.Load(Directory.GetFiles(QualityCatalog.BundledDirectory, "*.yaml"));

    private static IEnumerable<QualityCitation> Citations =>
        Shipped.Curves.SelectMany(c => c.Cited.Select(p => p.Citation)).Concat(Shipped.Rates.Select(r => r.Citation));

    [Fact]
    public void EveryShippedPointCitesAKnownSourceAndAPlace()
    {
        foreach (var file in Directory.GetFiles(QualityCatalog.BundledDirectory, "*.yaml"))
        {
            var ids = File.ReadAllLines(file).Where(l => l.TrimStart().StartsWith("- id: ", StringComparison.Ordinal))
                .Select(l => l.Trim()["- id: ".Length..].Trim()).ToHashSet();
            var cited = Shipped.Curves.Where(c => c.File == file).SelectMany(c => c.Cited.Select(p => p.Citation))
                .Concat(Shipped.Rates.Where(r => r.File == file).Select(r => r.Citation)).ToList();
            Assert.NotEmpty(cited);
            Assert.All(cited, c => Assert.Contains(c.SourceId, ids));
        }
        Assert.All(Citations, c => Assert.False(string.IsNullOrWhiteSpace(c.Where)));
        Assert.All(Citations, c => Assert.False(c.Estimate && c.Derived));
    }

    [Fact]
    public void ShippedValuesAreInRangeAndCurvesIncreaseInX()
    {
        foreach (var c in Shipped.Curves)
        {
            Assert.True(c.Points.Zip(c.Points.Skip(1)).All(p => p.Second.X > p.First.X), $"{c.File}: {c.Policy}/{c.Dataset}/{c.Model}: x must increase");
            // Retention may exceed 1 a little (R-KV reports 105% of full KV); accuracy is a fraction.
            double max = c.Kind == "kv_compression" ? 1.2 : 1.0;
            Assert.All(c.Points, p => Assert.InRange(p.Y, 0, max));
            if (c.X == "kept_fraction") Assert.All(c.Points, p => Assert.InRange(p.X, 0, 1));
            else Assert.All(c.Points, p => Assert.InRange(p.X, 1, 1 << 20));
        }
        Assert.All(Shipped.Rates, r => Assert.InRange(r.Rate, 0.01, 0.99));
    }

    [Fact]
    public void DerivedNumbersFollowFromWhatWasRead()
    {
        var derivedPoints = Shipped.Curves.SelectMany(c => c.Cited).Where(p => p.Citation.Derived).ToList();
        Assert.NotEmpty(derivedPoints);
        Assert.All(derivedPoints, p => Assert.Equal(p.Accuracy!.Value / p.FullAccuracy!.Value, p.Y, 0.001));
        var derivedRates = Shipped.Rates.Where(r => r.Citation.Derived).ToList();
        Assert.NotEmpty(derivedRates);
        Assert.All(derivedRates, r => Assert.Equal(r.Tau!.Value, AcceptanceRate.TokensPerStep(r.Rate, r.K!.Value), 0.01));
    }

    [Fact]
    public void TokensPerStepIsTheGeometricSum()
    {
        Assert.Equal(1.0, AcceptanceRate.TokensPerStep(0.0, 5), 12);
        Assert.Equal(1 + 0.5 + 0.25 + 0.125, AcceptanceRate.TokensPerStep(0.5, 3), 12);
    }

    [Fact]
    public void RateLookupPrefersTheScenariosModelAndSaysWhenItFallsBack()
    {
        var own = Shipped.Rate("draft", "math500", "DeepSeek-R1-Distill-Qwen-7B")!;
        Assert.Equal("DeepSeek-R1-Distill-Qwen-7B", own.Model);
        Assert.DoesNotContain("measured on", QualityCatalog.RateSource(own, own.Model));
        var other = Shipped.Rate("ngram", "gsm8k", "DeepSeek-R1-Distill-Qwen-7B")!;
        string source = QualityCatalog.RateSource(other, "DeepSeek-R1-Distill-Qwen-7B");
        Assert.Contains($"measured on {other.Model}, not DeepSeek-R1-Distill-Qwen-7B", source);
        Assert.Contains("derived from tau 1.54 at k 10", source);
        Assert.Null(Shipped.Rate("ngram", "no-such-dataset", "DeepSeek-R1-Distill-Qwen-7B"));
    }

    private const string Header = """
        kind: kv_compression
        sources:
          - { id: paper, citation: "A paper" }
        """;

    [Theory]
    [InlineData("{ x: 512, y: 0.5, source: paper }", "points[0].where")]
    [InlineData("{ x: 512, y: 0.5, source: paper, where: Table 2, estimate: true }", "points[0].reasoning")]
    [InlineData("{ x: 512, y: 0.5, source: paper, where: Table 2, estimate: true, derived: true, reasoning: guess }", "either derived")]
    [InlineData("{ x: 512, y: 0.5, source: paper, where: Table 2, derived: true }", "points[0].derived")]
    [InlineData("{ x: 512, y: 0.5, accuracy: 0.3, full_accuracy: 0.8, source: paper, where: Table 2 }", "points[0].y")]
    [InlineData("{ x: 512, y: 0.5, accuracy: 0.4, source: paper, where: Table 2 }", "points[0].full_accuracy")]
    [InlineData("{ x: 512, y: 0.5, source: other, where: Table 2 }", "unknown source 'other'")]
    public void BadCurvePointsAreRefusedNamingTheKey(string point, string expected)
    {
        var e = Assert.Throws<UserInputException>(() => LoadText(Header + $"\ncurves:\n  - {{ policy: rkv, dataset: aime24, x: budget_tokens, points: [ {point} ] }}\n"));
        Assert.Contains("q.yaml", e.Message);
        Assert.Contains(expected, e.Message);
    }

    [Theory]
    [InlineData("acceptance_rate: 0.5, tau: 2.2, k: 3", "acceptance_rate: 0.5 gives")]
    [InlineData("acceptance_rate: 0.5, tau: 1.875", "rates[0].k")]
    [InlineData("acceptance_rate: 0.5, tau: 9, k: 3", "rates[0].tau")]
    [InlineData("acceptance_rate: 0.5, derived: true", "rates[0].derived")]
    public void BadRatesAreRefusedNamingTheKey(string fields, string expected)
    {
        string yaml = "kind: speculative_acceptance\nsources:\n  - { id: paper, citation: \"A paper\" }\n"
            + $"rates:\n  - {{ method: eagle, dataset: gsm8k, {fields}, source: paper, where: Table 1 }}\n";
        var e = Assert.Throws<UserInputException>(() => LoadText(yaml));
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void AConsistentDerivedRateLoads()
    {
        var q = LoadText("kind: speculative_acceptance\nsources:\n  - { id: paper, citation: \"A paper\" }\n"
            + "rates:\n  - { method: eagle, dataset: gsm8k, acceptance_rate: 0.5, tau: 1.875, k: 3, derived: true, source: paper, where: Table 1 }\n");
        var r = Assert.Single(q.Rates);
        Assert.True(r.Citation.Derived);
        Assert.Equal((1.875, 3), (r.Tau!.Value, r.K!.Value));
    }

    private static QualityCatalog LoadText(string yaml)
    {
        var path = Path.Combine(RlmsProcess.TempDir(), "q.yaml");
        File.WriteAllText(path, yaml);
        return QualityCatalog.Load([path]);
    }
}
