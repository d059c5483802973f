using RLMServing.IO.Scenarios;
using RLMServing.Scenarios;
using RLMServing.Tests.Simulation;
using Xunit;

namespace RLMServing.Tests.Traces;

/// <summary>workload.trace and workload.dataset in scenario files.</summary>
public class ScenarioWorkloadTests
{
    private static Scenario Bind(TempDir temp, string workload, string model = "DeepSeek-R1-Distill-Qwen-7B")
    {
        string path = temp.File("s.yaml", $"""
            name: t
            seed: 7
            hardware: {"{"} gpu: H100-SXM-80G {"}"}
            model: {model}
            workload: {workload}
            """);
        var file = ScenarioLoader.Load(path);
        return ScenarioLoader.Bind(file.Runs[0].Tree, file.Path, TestScenarios.Catalog);
    }

    [Fact]
    public void TraceWorkloadReplaysRelativeToTheScenarioFile()
    {
        using var temp = new TempDir();
        File.Copy(SharedData.Path_("vidur", "splitwise_code.csv"), Path.Combine(temp.Path, "code.csv"));
        var once = Bind(temp, "{ trace: code.csv, format: vidur, limit: 100 }");
        var slow = Bind(temp, "{ trace: code.csv, time_scale: 2.0, limit: 100 }");
        Assert.Null(once.Workload);
        Assert.Equal(100, once.ReplayRequests!.Count);
        Assert.Equal(2 * once.ReplayRequests[^1].ArrivalTimeS, slow.ReplayRequests![^1].ArrivalTimeS, 9);
    }

    [Fact]
    public void DatasetWorkloadAppliesTheThinkingBudget()
    {
        using var temp = new TempDir();
        var s = Bind(temp, "{ dataset: aime24, requests: 300, arrival: { process: poisson, rate: 1 }, max_thinking_tokens: 4096 }");
        Assert.Equal(300, s.ReplayRequests!.Count);
        Assert.All(s.ReplayRequests, r => Assert.InRange(r.ThinkingTokens, 0, 4096));
        Assert.Contains(s.ReplayRequests, r => r.ThinkingTruncated);
        Assert.All(s.ReplayRequests.Where(r => r.ThinkingTruncated), r => Assert.Equal(4096, r.ThinkingTokens));
        var again = Bind(temp, "{ dataset: aime24, requests: 300, arrival: { process: poisson, rate: 1 }, max_thinking_tokens: 4096 }");
        Assert.Equal(s.ReplayRequests, again.ReplayRequests);
    }

    [Fact]
    public void NonReasoningModelGetsNoThinking()
    {
        using var temp = new TempDir();
        var s = Bind(temp, "{ dataset: gsm8k, requests: 50, arrival: { process: poisson, rate: 1 } }", model: "Qwen2.5-7B-Instruct");
        Assert.All(s.ReplayRequests!, r => Assert.Equal(0, r.ThinkingTokens));
    }

    [Theory]
    [InlineData("{ trace: missing.csv }", "workload.trace")]
    [InlineData("{ trace: x.csv, dataset: gsm8k }", "workload.dataset")]
    [InlineData("{ dataset: nope, requests: 5, arrival: { process: poisson, rate: 1 } }", "unknown dataset preset 'nope'")]
    [InlineData("{ dataset: gsm8k, requests: 5, arrival: { process: closed_loop, concurrency: 4 } }", "closed_loop")]
    [InlineData("{ dataset: gsm8k, requests: 5, arrival: { process: poisson, rate: 1 }, prompt_tokens: { dist: constant, value: 3 } }", "prompt_tokens")]
    public void BadTraceOrDatasetWorkloadsAreNamed(string workload, string expected)
    {
        using var temp = new TempDir();
        var e = Assert.Throws<UserInputException>(() => Bind(temp, workload));
        Assert.Contains(expected, e.Message);
    }
}
