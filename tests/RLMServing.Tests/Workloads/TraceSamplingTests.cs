using FsCheck.Xunit;
using RLMServing.IO.Scenarios;
using RLMServing.Metrics;
using RLMServing.Scenarios;
using RLMServing.Tests.Simulation;
using RLMServing.Tests.Traces;
using RLMServing.Workloads;
using Xunit;

namespace RLMServing.Tests.Workloads;

/// <summary>Parallel sampling (workload.n) of trace and dataset workloads: each row becomes n samples at its arrival.</summary>
public class TraceSamplingTests
{
    private const string Trace = "arrival_time_s,prompt_tokens,output_tokens,thinking_tokens\n0,100,50,40\n0.5,300,900,800\n1.25,40,7,0\n2,1200,3000,2600\n";

    private static Scenario Bind(TempDir temp, string workload, string? trace = Trace)
    {
        if (trace is not null) temp.File("t.csv", trace);
        string path = temp.File("s.yaml", $"""
            name: t
            seed: 7
            hardware: {"{"} gpu: H100-SXM-80G {"}"}
            model: DeepSeek-R1-Distill-Qwen-7B
            workload: {workload}
            """);
        var file = ScenarioLoader.Load(path);
        return ScenarioLoader.Bind(file.Runs[0].Tree, file.Path, TestScenarios.Catalog);
    }

    [Theory]
    [InlineData("{ trace: t.csv, format: csv }")]
    [InlineData("{ dataset: aime24, requests: 40, arrival: { process: poisson, rate: 1 } }")]
    public void OneSampleIsTheWorkloadWithoutTheKey(string workload)
    {
        using var temp = new TempDir();
        var without = Bind(temp, workload).Requests();
        var one = Bind(temp, "{ n: 1, " + workload[2..]).Requests();
        Assert.Equal(without, one);
        Assert.All(one, r => Assert.Null(r.PromptId));
    }

    [Theory]
    [InlineData("{ trace: t.csv, format: csv, n: 3, max_thinking_tokens: 1000 }", 4)]
    [InlineData("{ dataset: aime24, requests: 40, arrival: { process: poisson, rate: 1 }, n: 3 }", 40)]
    public void EveryRowBecomesNSamplesAtItsArrivalSharingItsPrompt(string workload, int rows)
    {
        using var temp = new TempDir();
        var single = Bind(temp, workload.Replace("n: 3", "n: 1", StringComparison.Ordinal)).Requests();
        var sampled = Bind(temp, workload).Requests();
        Assert.Equal(3 * rows, sampled.Count);
        Assert.Equal(sampled.Count, sampled.Select(r => r.Id).Distinct().Count());
        for (int i = 0; i < rows; i++)
        {
            var group = sampled.Skip(3 * i).Take(3).ToList();
            Assert.Equal([0, 1, 2], group.Select(r => r.SampleIndex));
            Assert.All(group, r => Assert.Equal(((long?)i, single[i].ArrivalTimeS, single[i].PromptTokens), (r.PromptId, r.ArrivalTimeS, r.PromptTokens)));
            // Sample 0 is the row itself; every sample's prefix identity covers the whole shared prompt.
            Assert.Equal((single[i].ThinkingTokens, single[i].AnswerTokens, single[i].ThinkingTruncated), (group[0].ThinkingTokens, group[0].AnswerTokens, group[0].ThinkingTruncated));
            Assert.All(group, r => Assert.Equal(r.PromptTokens, r.PrefixCoveredTokens));
            Assert.Single(group.Select(r => string.Join(",", r.PrefixHashes!)).Distinct());
        }
        // The workload's limits apply to every sample.
        if (workload.Contains("max_thinking_tokens", StringComparison.Ordinal)) Assert.All(sampled, r => Assert.InRange(r.ThinkingTokens, 0, 1000));
        // Same seed, same samples; the other samples' lengths are drawn, not copied.
        Assert.Equal(sampled.Select(Key), Bind(temp, workload).Requests().Select(Key));
        Assert.NotEqual(sampled.Where(r => r.SampleIndex == 1).Select(r => r.OutputTokens), single.Select(r => r.OutputTokens));
    }

    /// <summary>A trace's other samples take output lengths the trace has: its own distribution, bootstrapped.</summary>
    /// <summary>A request with its prefix ids as text (records compare arrays by reference).</summary>
    private static (RequestSpec, string) Key(RequestSpec r) => (r with { PrefixHashes = null }, string.Join(",", r.PrefixHashes ?? []));

    [Fact]
    public void TraceSamplesDrawTheTracesOwnOutputLengths()
    {
        using var temp = new TempDir();
        var sampled = Bind(temp, "{ trace: t.csv, format: csv, n: 8 }").Requests();
        var rows = new HashSet<(int, int)> { (40, 10), (800, 100), (0, 7), (2600, 400) };
        Assert.All(sampled, r => Assert.Contains((r.ThinkingTokens, r.AnswerTokens), rows));
        Assert.True(sampled.Select(r => (r.ThinkingTokens, r.AnswerTokens)).Distinct().Count() > 1);
    }

    [Theory]
    [InlineData("{ trace: t.csv, format: csv, n: 2 }", "arrival_time_s,prompt_tokens,output_tokens,session_id\n0,100,50,a\n1,10,5,a\n", "multi-turn sessions")]
    [InlineData("{ trace: t.csv, format: csv, n: 0 }", Trace, "workload.n")]
    [InlineData("{ dataset: gsm8k, requests: 5, n: 2, arrival: { process: closed_loop, concurrency: 4 } }", null, "closed_loop")]
    public void UnsupportedSamplingIsOneLineNamingTheKey(string workload, string? trace, string expected)
    {
        using var temp = new TempDir();
        var e = Assert.Throws<UserInputException>(() => Bind(temp, workload, trace));
        Assert.Contains(expected, e.Message);
        Assert.DoesNotContain('\n', e.Message);
        if (expected == "multi-turn sessions") Assert.Contains("workload.n", e.Message);
    }

    /// <summary>
    /// Trace-like rows (Mooncake-style hash chains, shared system prompts or none) sent as n samples over random
    /// scenarios: the core invariants hold, requests are conserved (rows = n x prompts, each completed or rejected
    /// once with exactly its tokens), and with memory to spare each prompt is prefilled once per admission — every
    /// other sample reads all of its prompt's full blocks from the shared KV.
    /// </summary>
    [Property(MaxTest = 80)]
    public void SampledTraceRowsAreConservedAndPrefilledOnce(int seed)
    {
        var rng = new Random(seed ^ 0x7ace);
        int n = 2 + rng.Next(4);
        var s = TestScenarios.RandomCombination(seed);
        var rows = s.ReplayRequests!.Select(r => ParallelSampling.IsSessionTurn(r) ? r with { PrefixHashes = null, PrefixHashTokens = 0 } : r).ToList();
        bool roomy = rng.Next(2) == 0;
        s = s with
        {
            Workload = null,
            ReplayRequests = ParallelSampling.ExpandRows(rows, n, seed),
            Scheduler = roomy ? s.Scheduler with { Preemption = PreemptionMode.Recompute } : s.Scheduler,
        };
        var gpu = roomy ? TestScenarios.SmallGpu(256) : TestScenarios.GpuFor(seed);
        var specs = s.Requests().ToDictionary(r => r.Id);
        var result = TestScenarios.Run(s, gpu, check: true);
        Assert.Equal(n * rows.Count, result.Requests.Count);
        Assert.Equal(specs.Keys.Order(), result.Requests.Select(r => r.RequestId).Order());
        Assert.All(result.Requests.GroupBy(r => r.PromptId), g => Assert.Equal(n, g.Count()));
        foreach (var r in result.Requests.Where(r => r.Status == RequestStatus.Completed))
            Assert.Equal(specs[r.RequestId].OutputTokens, r.OutputTokens);
        if (!roomy || result.Summary.Preemptions > 0) return;
        int block = s.KvCache.BlockSize;
        foreach (var r in result.Requests.Where(r => r.SampleIndex > 0 && r.Status == RequestStatus.Completed))
            Assert.Equal((r.PromptTokens - 1) / block * block, r.CachedPromptTokens);
    }
}
