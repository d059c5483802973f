using RLMServing.IO.Scenarios;
using RLMServing.Scenarios;
using RLMServing.Tests.Cli;
using RLMServing.Tests.Simulation;
using RLMServing.Workloads;
using Xunit;

namespace RLMServing.Tests.Scenarios;

public class ScenarioLoaderTests
{
    private static string Write(string yaml)
    {
        var path = Path.Combine(RlmsProcess.TempDir(), "s.yaml");
        File.WriteAllText(path, yaml);
        return path;
    }

    private const string Minimal = """
        hardware: { gpu: H100-SXM-80G }
        model: DeepSeek-R1-Distill-Qwen-7B
        workload:
          requests: 10
          arrival: { process: gamma, rate: 2, burstiness: 0.5 }
          prompt_tokens: { dist: uniform, min: 10, max: 20 }
          output_tokens: { dist: normal, mean: 100, std: 10 }
        """;

    [Fact]
    public void DefaultsAreFilledIn()
    {
        var file = ScenarioLoader.Load(Write(Minimal));
        var s = ScenarioLoader.Bind(file.Runs[0].Tree, file.Path, TestScenarios.Catalog);
        Assert.Equal("s", s.Name);
        Assert.Equal(1, s.Hardware.Replicas);
        // The engine is vLLM V1 unless the scenario says otherwise: its scheduler and its defaults.
        Assert.Equal(EngineConfig.VllmV1, s.Engine.Name);
        Assert.Equal(BatchingPolicy.VllmV1, s.Scheduler.Batching);
        Assert.True(s.KvCache.Memory.PrefixCaching);
        Assert.Equal(16, s.KvCache.BlockSize);
        Assert.Equal(0.9, s.Workload!.ThinkingFraction);   // a reasoning model thinks by default
        Assert.IsType<GammaArrivals>(s.Workload.Arrival);
        Assert.True(s.Simulation.FastForward);
    }

    [Fact]
    public void SetOverridesScalarsAndWholeMappings()
    {
        var file = ScenarioLoader.Load(Write(Minimal), ["workload.arrival={process: constant, rate: 7}", "scheduler.batching=chunked_prefill", "seed=5"]);
        var s = ScenarioLoader.Bind(file.Runs[0].Tree, file.Path, TestScenarios.Catalog);
        Assert.Equal(new ConstantArrivals(7), s.Workload!.Arrival);
        Assert.Equal(BatchingPolicy.ChunkedPrefill, s.Scheduler.Batching);
        Assert.Equal(5, s.Seed);
    }

    [Fact]
    public void VariantsOverrideTheBaseIndependently()
    {
        var yaml = Minimal + "\nvariants:\n  - { name: a }\n  - { name: b, set: { scheduler.max_num_seqs: 8, model: Qwen2.5-7B-Instruct } }\n";
        var file = ScenarioLoader.Load(Write(yaml));
        Assert.True(file.HasVariants);
        var a = ScenarioLoader.Bind(file.Runs[0].Tree, file.Path, TestScenarios.Catalog);
        var b = ScenarioLoader.Bind(file.Runs[1].Tree, file.Path, TestScenarios.Catalog);
        Assert.Equal(1024, a.Scheduler.MaxNumSeqs);   // vLLM V1's default on an 80 GB H100
        Assert.Equal(8, b.Scheduler.MaxNumSeqs);
        Assert.Equal("Qwen2.5-7B-Instruct", b.Model);
        Assert.Equal(0.0, b.Workload!.ThinkingFraction);   // the instruct model does not think
    }

    [Fact]
    public void ExplicitThinkingAndAnswerDistributions()
    {
        var yaml = Minimal.Replace("  output_tokens: { dist: normal, mean: 100, std: 10 }",
            "  thinking_tokens: { dist: constant, value: 700 }\n  answer_tokens: { dist: constant, value: 50 }\n  max_thinking_tokens: 500");
        var file = ScenarioLoader.Load(Write(yaml));
        var s = ScenarioLoader.Bind(file.Runs[0].Tree, file.Path, TestScenarios.Catalog);
        Assert.All(s.Workload!.Generate(1), r => Assert.Equal((500, 50, true), (r.ThinkingTokens, r.AnswerTokens, r.ThinkingTruncated)));
    }

    [Fact]
    public void MixtureComponentsRejectUnknownKeys()
    {
        var yaml = Minimal.Replace("output_tokens: { dist: normal, mean: 100, std: 10 }",
            "output_tokens: { dist: mixture, components: [ { weight: 1, dist: lognormal, median: 100, sigmaa: 1 } ] }");
        var file = ScenarioLoader.Load(Write(yaml));
        var e = Assert.Throws<UserInputException>(() => ScenarioLoader.Bind(file.Runs[0].Tree, file.Path, TestScenarios.Catalog));
        Assert.Contains("workload.output_tokens.components[0].sigmaa", e.Message);
    }

    [Fact]
    public void EveryShippedScenarioBinds()
    {
        foreach (var path in Directory.GetFiles(Path.Combine(RlmsProcess.RepoRoot(), "scenarios"), "*.yaml"))
        {
            if (ScenarioLoader.ReadTree(path).Get("base") is not null) continue;   // a sweep file (Sweeps/ShippedSweepTests)
            var file = ScenarioLoader.Load(path);
            foreach (var run in file.Runs) ScenarioLoader.Bind(run.Tree, file.Path, TestScenarios.Catalog);
        }
    }
}
