using RLMServing.IO.Scenarios;
using RLMServing.Scenarios;
using RLMServing.Tests.Cli;
using RLMServing.Tests.Simulation;
using RLMServing.Workloads;
using Xunit;

namespace RLMServing.Tests.Scenarios;

/// <summary>workload.arrival: { process: closed_batches, batch: N, gap_ms: G } in scenario files.</summary>
public class ClosedBatchScenarioTests
{
    private static Scenario Bind(string workload, string extra = "", string model = "DeepSeek-R1-Distill-Qwen-7B")
    {
        var path = Path.Combine(RlmsProcess.TempDir(), "s.yaml");
        File.WriteAllText(path, $"""
            name: t
            seed: 7
            hardware: {"{"} gpu: H100-SXM-80G {"}"}
            model: {model}
            workload: {workload}
            {extra}
            """);
        var file = ScenarioLoader.Load(path);
        return ScenarioLoader.Bind(file.Runs[0].Tree, file.Path, TestScenarios.Catalog);
    }

    private const string Synthetic = "{ requests: 50, arrival: ARRIVAL, prompt_tokens: { dist: constant, value: 10 }, output_tokens: { dist: constant, value: 20 } }";

    [Fact]
    public void SyntheticWorkloadBindsBatchAndGap()
    {
        var s = Bind(Synthetic.Replace("ARRIVAL", "{ process: closed_batches, batch: 64, gap_ms: 250 }"));
        Assert.Equal(new ClosedBatchArrivals(64, 250), s.Workload!.Arrival);
        Assert.Equal(new ClosedBatchArrivals(64, 250), s.ClosedBatches);
        Assert.All(s.Requests(), r => Assert.Equal(0, r.ArrivalTimeS));
        Assert.Equal(0, Assert.IsType<ClosedBatchArrivals>(Bind(Synthetic.Replace("ARRIVAL", "{ process: closed_batches, batch: 1 }")).Workload!.Arrival).GapMs);
    }

    [Theory]
    [InlineData("math500", "DeepSeek-R1-Distill-Qwen-7B", "reasoning")]
    [InlineData("aime24", "Qwen2.5-7B-Instruct", "standard")]
    [InlineData("gsm8k", "DeepSeek-R1-Distill-Qwen-7B", "reasoning")]
    public void TheBenchDrawsTheSimulatorsLengthsForTheSameSeed(string dataset, string model, string lengths)
    {
        // So a live run and its simulation differ by the server alone, not by the sample.
        var s = Bind($"{{ dataset: {dataset}, requests: 40, arrival: {{ process: closed_batches, batch: 8 }} }}", model: model);
        var simulated = s.ReplayRequests!.Select(r => r.ThinkingTokens + r.AnswerTokens).ToList();
        var bench = RLMServing.Bench.BenchDatasets.Load(new RLMServing.Bench.BenchOptions
        {
            BaseUrl = "http://127.0.0.1:9", Model = "m", DatasetName = dataset, NumPrompts = 40, Seed = 7, PresetLengths = lengths,
        }).Select(p => p.MaxTokens).ToList();
        Assert.Equal(simulated, bench);
    }

    [Fact]
    public void DatasetPresetIsSentInClosedBatches()
    {
        var s = Bind("{ dataset: gsm8k, requests: 130, arrival: { process: closed_batches, batch: 64 } }");
        Assert.Equal(new ClosedBatchArrivals(64), s.DatasetBatches);
        Assert.Equal(s.DatasetBatches, s.ClosedBatches);
        Assert.Equal(130, s.ReplayRequests!.Count);
        // Same lengths as the open-loop preset (the length stream does not depend on the arrival process).
        var open = Bind("{ dataset: gsm8k, requests: 130, arrival: { process: poisson, rate: 3 } }");
        Assert.Null(open.ClosedBatches);
        Assert.Equal(open.ReplayRequests!.Select(r => (r.PromptTokens, r.ThinkingTokens, r.AnswerTokens)),
            s.ReplayRequests.Select(r => (r.PromptTokens, r.ThinkingTokens, r.AnswerTokens)));
    }

    [Theory]
    [InlineData("{ process: closed_batches }", "workload.arrival.batch: is required")]
    [InlineData("{ process: closed_batches, batch: 0 }", "workload.arrival.batch: must be greater than 0, got 0")]
    [InlineData("{ process: closed_batches, batch: 2.5 }", "workload.arrival.batch")]
    [InlineData("{ process: closed_batches, batch: 8, gap_ms: -1 }", "workload.arrival.gap_ms: must not be negative")]
    [InlineData("{ process: closed_batches, batch: 8, concurrency: 4 }", "workload.arrival.concurrency")]
    [InlineData("{ process: closed_batch, batch: 8 }", "closed_batches")]
    [InlineData("{ process: closed_batches, batch: 1, gap_ms: 1e12 }", "one year")]
    public void BadArrivalsAreNamedOnOneLine(string arrival, string expected)
    {
        var e = Assert.Throws<UserInputException>(() => Bind(Synthetic.Replace("ARRIVAL", arrival)));
        Assert.Contains(expected, e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void ParallelSamplingAndDisaggregationAreRefused()
    {
        var n = Assert.Throws<UserInputException>(() => Bind(Synthetic.Replace("ARRIVAL", "{ process: closed_batches, batch: 8 }").Replace("requests: 50,", "requests: 50, n: 2,")));
        Assert.Contains("workload.n", n.Message);
        Assert.Contains("closed_batches", n.Message);
        var dn = Assert.Throws<UserInputException>(() => Bind("{ dataset: gsm8k, requests: 10, n: 2, arrival: { process: closed_batches, batch: 4 } }"));
        Assert.Contains("workload.n", dn.Message);
        var cluster = ScenarioLoader.Load(Path.Combine(RlmsProcess.RepoRoot(), "scenarios", "cluster-disaggregated.yaml"),
            ["workload.arrival={process: closed_batches, batch: 8}"]);
        ScenarioLoader.Bind(cluster.Runs[0].Tree, cluster.Path, TestScenarios.Catalog);   // colocated replicas: fine
        var d = Assert.Throws<UserInputException>(() => ScenarioLoader.Bind(cluster.Runs[1].Tree, cluster.Path, TestScenarios.Catalog));
        Assert.Contains("closed_batches", d.Message);
    }

    [Fact]
    public void ShippedExampleRunsInBatches()
    {
        var path = Path.Combine(RlmsProcess.RepoRoot(), "scenarios", "closed-batches.yaml");
        var run = RLMServing.IO.Runs.ScenarioRunner.Prepare(ScenarioLoader.Load(path, ["workload.requests=40", "workload.arrival.batch=16", "workload.max_output_tokens=2048"]),
            RLMServing.IO.Catalog.CatalogLoader.LoadDefault())[0];
        var result = RLMServing.IO.Runs.ScenarioRunner.Simulate(run, run.Name);
        var rows = result.Requests.OrderBy(r => r.RequestId).ToList();
        Assert.Equal(40, rows.Count);
        Assert.All(rows.Take(16), r => Assert.Equal(0, r.ArrivalTimeS));
        double firstEnd = rows.Take(16).Max(r => r.CompletionTimeS!.Value);
        Assert.All(rows.Skip(16).Take(16), r => Assert.Equal(firstEnd, r.ArrivalTimeS));
    }
}
